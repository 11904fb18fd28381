"""ecgarena: a benchmark arena for adversarial robustness of ECG classifiers.

This namespace is the plugin contract (CONTRIBUTING.md, "Plugin utilities"): protocols, specs,
the hook marker and the shared helpers. Deeper modules are private and may change; the plugin
author kit is `ecgarena.testing`.
"""

from importlib.metadata import version

from .blocks import BasicBlock1d, ResNet1d, conv_bn
from .constraints import (
    PrecordialProfile,
    bpda_identity,
    energy_above,
    l2_norms,
    lead_budget,
    project,
    random_in_ball,
    rescale_into,
)
from .errors import DataError, PluginError, UserError
from .filters import gaussian_kernel, lowpass, samples, smooth
from .gradients import (
    ascent_direction,
    eval_mode,
    fgsm,
    loss_and_grad,
    margin,
    mi_fgsm,
    per_sample_loss,
    pgd,
    step_scale,
)
from .hookspecs import hookimpl
from .host import Host
from .metrics import ABSTAIN, flips
from .options import Options
from .progress import progress
from .protocols import (
    Attack,
    AttackContext,
    Attacked,
    Classifier,
    ClassifierInfo,
    Dataset,
    DatasetInfo,
    Defense,
    FitContext,
    Model,
    Split,
)
from .specs import MatrixSpec, RunSpec, ThreatModel, TrainSpec
from .training import (
    fit_classifier,
    predict_logits,
    standardization,
    task_loss,
    to_tensor,
    validation_score,
)

__version__ = version("ecgarena")  # one source: pyproject.toml

__all__ = [
    # Plugins: the hook marker, the host that loads and creates them, their options base
    "Host",
    "Options",
    "__version__",
    "hookimpl",
    # Errors: one-line messages the CLI shows without a traceback
    "DataError",
    "PluginError",
    "UserError",
    # Protocols: the four kinds of plugin and what the engine hands them
    "Attack",
    "AttackContext",
    "Attacked",
    "Classifier",
    "ClassifierInfo",
    "Dataset",
    "DatasetInfo",
    "Defense",
    "FitContext",
    "Model",
    "Split",
    # Specs: the threat model an attack works under, training, runs and matrices
    "MatrixSpec",
    "RunSpec",
    "ThreatModel",
    "TrainSpec",
    # Budgets: per-lead budgets, projection onto the threat model's ball, band energy, BPDA
    "PrecordialProfile",
    "bpda_identity",
    "energy_above",
    "l2_norms",
    "lead_budget",
    "project",
    "random_in_ball",
    "rescale_into",
    # Gradient attacks and the per-record losses they ascend
    "ascent_direction",
    "eval_mode",
    "fgsm",
    "loss_and_grad",
    "margin",
    "mi_fgsm",
    "per_sample_loss",
    "pgd",
    "step_scale",
    # Training: the engine's training loop and the pieces defenses reuse
    "fit_classifier",
    "predict_logits",
    "standardization",
    "task_loss",
    "to_tensor",
    "validation_score",
    # Signal processing along time (mV in, mV out)
    "gaussian_kernel",
    "lowpass",
    "samples",
    "smooth",
    # Network blocks shared by model and defense plugins
    "BasicBlock1d",
    "ResNet1d",
    "conv_bn",
    # Decisions: a decision rule's abstention, predictions an attack changed
    "ABSTAIN",
    "flips",
    # Console: the progress bar of long loops
    "progress",
]
