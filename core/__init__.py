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
    # Plugins: the hook marker, the host that loads and creates them, their options base
    "Host": "host",
    "Options": "options",
    "hookimpl": "hookspecs",
    # Errors: one-line messages the CLI shows without a traceback
    "DataError": "errors",
    "PluginError": "errors",
    "UserError": "errors",
    # Protocols: the four kinds of plugin and what the engine hands them
    "Attack": "protocols",
    "AttackContext": "protocols",
    "Attacked": "protocols",
    "Classifier": "protocols",
    "ClassifierInfo": "protocols",
    "Dataset": "protocols",
    "DatasetInfo": "protocols",
    "Defense": "protocols",
    "FitContext": "protocols",
    "Model": "protocols",
    "Split": "protocols",
    # Specs: the threat model an attack works under, training, runs and matrices
    "MatrixSpec": "specs",
    "RunSpec": "specs",
    "ThreatModel": "specs",
    "TrainSpec": "specs",
    # Budgets: per-lead budgets, projection onto the threat model's ball, band energy, BPDA
    "PrecordialProfile": "constraints",
    "bpda_identity": "constraints",
    "energy_above": "constraints",
    "l2_norms": "constraints",
    "lead_budget": "constraints",
    "project": "constraints",
    "random_in_ball": "constraints",
    "rescale_into": "constraints",
    # Gradient attacks and the per-record losses they ascend
    "ascent_direction": "gradients",
    "eval_mode": "gradients",
    "fgsm": "gradients",
    "loss_and_grad": "gradients",
    "margin": "gradients",
    "mi_fgsm": "gradients",
    "per_sample_loss": "gradients",
    "pgd": "gradients",
    "step_scale": "gradients",
    # Training: the engine's training loop and the pieces defenses reuse
    "fit_classifier": "training",
    "predict_logits": "training",
    "standardization": "training",
    "task_loss": "training",
    "to_tensor": "training",
    "validation_score": "training",
    # Signal processing along time (mV in, mV out)
    "bandpass": "filters",
    "gaussian_kernel": "filters",
    "highpass": "filters",
    "lowpass": "filters",
    "samples": "filters",
    "smooth": "filters",
    # Network blocks shared by model and defense plugins
    "BasicBlock1d": "blocks",
    "ResNet1d": "blocks",
    "conv_bn": "blocks",
    # Decisions: a decision rule's abstention, predictions an attack changed
    "ABSTAIN": "metrics",
    "flips": "metrics",
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


__all__ = ["__version__", "progress", *_MODULE_OF]  # the plugin contract
