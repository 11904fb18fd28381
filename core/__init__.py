"""ecgarena: a benchmark arena for adversarial robustness of ECG classifiers.

This namespace is the plugin contract (CONTRIBUTING.md, "Plugin utilities"): protocols, specs,
the hook marker and the shared helpers. Deeper modules are private and may change; the plugin
author kit is `ecgarena.testing`.

Names load on first use (PEP 562), so `import ecgarena` and the CLI's `--help` stay fast: torch
and scipy are imported only when a name that needs them is.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version
from typing import Any

__version__ = version("ecgarena")  # one source: pyproject.toml

# Bound now, not lazily: the name is also its submodule's, and importing `ecgarena.progress`
# would otherwise leave the module where the function belongs (rich only: cheap).
from .progress import progress  # noqa: E402

_MODULE_OF: dict[str, str] = {  # public name -> the private module that defines it
    **dict.fromkeys(("BasicBlock1d", "ResNet1d", "conv_bn"), "blocks"),
    **dict.fromkeys(
        (
            "PrecordialProfile",
            "bpda_identity",
            "energy_above",
            "l2_norms",
            "lead_budget",
            "project",
            "random_in_ball",
            "rescale_into",
        ),
        "constraints",
    ),
    **dict.fromkeys(("DataError", "PluginError", "UserError"), "errors"),
    **dict.fromkeys(("gaussian_kernel", "lowpass", "samples", "smooth"), "filters"),
    **dict.fromkeys(
        (
            "ascent_direction",
            "eval_mode",
            "fgsm",
            "loss_and_grad",
            "margin",
            "mi_fgsm",
            "per_sample_loss",
            "pgd",
            "step_scale",
        ),
        "gradients",
    ),
    **dict.fromkeys(("hookimpl",), "hookspecs"),
    **dict.fromkeys(("Host",), "host"),
    **dict.fromkeys(("ABSTAIN", "flips"), "metrics"),
    **dict.fromkeys(("Options",), "options"),
    **dict.fromkeys(
        (
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
        ),
        "protocols",
    ),
    **dict.fromkeys(("MatrixSpec", "RunSpec", "ThreatModel", "TrainSpec"), "specs"),
    **dict.fromkeys(
        (
            "fit_classifier",
            "predict_logits",
            "standardization",
            "task_loss",
            "to_tensor",
            "validation_score",
        ),
        "training",
    ),
}


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use, then keep the name here."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'ecgarena' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
