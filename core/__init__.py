"""ecgarena: a benchmark arena for adversarial robustness of ECG classifiers.

The public API for plugin authors: protocols, specs, the hook marker and shared helpers.
"""

from importlib.metadata import version

from .errors import DataError, PluginError, UserError
from .hookspecs import hookimpl
from .protocols import (
    Attack,
    AttackContext,
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

__version__ = version("ecgarena")  # one source: pyproject.toml

__all__ = [
    "Attack",
    "AttackContext",
    "Classifier",
    "ClassifierInfo",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "Defense",
    "FitContext",
    "MatrixSpec",
    "Model",
    "PluginError",
    "RunSpec",
    "Split",
    "ThreatModel",
    "TrainSpec",
    "UserError",
    "__version__",
    "hookimpl",
]
