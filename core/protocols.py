"""The four kinds of pieces (Dataset, Model, Defense, Attack) and what passes between them.

Units contract: signals are float32 tensors `(batch, leads, time)` in millivolts; classifiers
standardise inside and return logits; budgets are in mV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, get_args, runtime_checkable

import numpy as np
import torch
from torch import nn

from .errors import PluginError
from .specs import ThreatModel, TrainSpec

Task = Literal["multiclass", "multilabel"]
SplitName = Literal["train", "val", "test"]
DefenseKind = Literal["none", "preprocessing", "training", "architecture", "ensemble", "certified"]
DEFENSE_KINDS: tuple[str, ...] = get_args(DefenseKind)
CertifiedNorm = Literal["l2", "linf"]


@dataclass(frozen=True)
class Split:
    """One split of a dataset: signals in mV, labels (class index or {0,1} vector), record ids."""

    x: np.ndarray
    y: np.ndarray
    ids: list[str]

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class DatasetInfo:
    """What a classifier and an attack need to know about the data."""

    name: str
    task: Task
    classes: tuple[str, ...]
    leads: tuple[str, ...]
    fs: float
    n_samples: int


@runtime_checkable
class Dataset(Protocol):
    """A dataset plugin: constructed with options (`data_dir` and `cache_dir` among them, given
    by the core), then loads named splits (cached)."""

    name: ClassVar[str]
    info: DatasetInfo
    data_dir: Path | None
    """The source folder (`--data-dir`); None lets the dataset look it up (ECGARENA_DATA)."""
    cache_dir: Path
    """Where decoded arrays are cached; the core passes `<home>/cache`."""

    def load(self, split: SplitName) -> Split: ...

    def describe(self) -> dict[str, Any]:
        """What was found on disk: records, classes, folds, rate (for `ecgarena data info`)."""
        ...

    def cache_parts(self) -> dict[str, Any]:
        """Everything that determines the decoded records (options, source fingerprint): the
        core digests it into the keys of cached weights and stored cells."""
        ...


class DatasetCapabilities(Protocol):
    """Optional Dataset members, checked when the plugin registers (`ecgarena.capabilities`)."""

    notes: list[str]
    """Caveats about the loaded data, added to every cell's warnings after evaluation."""


@runtime_checkable
class Model(Protocol):
    """A model plugin: builds an `nn.Module` mapping standardised signals to logits."""

    name: ClassVar[str]

    def build(self, n_leads: int, n_samples: int, n_classes: int) -> nn.Module: ...


@dataclass(frozen=True)
class ClassifierInfo:
    """Honest metadata about a defended classifier, stored with every result."""

    deterministic: bool = True
    differentiable: bool = True
    forward_passes: int = 1
    certifies: bool = False
    gradient: str = "exact"  # how attacks get gradients: exact, bpda, eot
    notes: str = ""


class Standardize(nn.Module):
    """First layer of every classifier: (x − mean) / std with constants fitted on train, in mV."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ClassifierCapabilities(Protocol):
    """Optional Classifier members (see `Classifier`), checked on the Classifier subclasses a
    plugin defines when it registers; `info.certifies` without `certify` fails construction."""

    certified_norm: CertifiedNorm
    """The norm of `certify`'s radii (default l2), used to measure the attack's δ beside them."""
    certify_passes: int
    """Forward passes `certify` spends per record (default `info.forward_passes`), reported."""
    members: nn.ModuleList
    """An ensemble's members, each mV → logits; the core then reports the ensemble block."""
    decision_rule: str
    """Names the rule `decide` applies (e.g. PREDICT), shown with accuracy and F1."""

    def certify(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(label or −1 abstain, radius in mV) per record; called on the clean test records
        after the adversarial evaluation when `info.certifies`."""
        ...

    def decide(self, x: torch.Tensor) -> np.ndarray:
        """Labels by the defense's own rule (−1: abstain); called on the clean and adversarial
        records, in eval mode; accuracy and F1 then score it, AUROC the logits."""
        ...


class Classifier(nn.Module):
    """A whole defended pipeline: mV signal → [preprocess] → standardise → net → logits.
    Optional members (certification, own decisions, ensembles): `ClassifierCapabilities`."""

    def __init__(
        self,
        net: nn.Module,
        mean: float = 0.0,
        std: float = 1.0,
        preprocess: nn.Module | None = None,
        info: ClassifierInfo | None = None,
    ) -> None:
        super().__init__()
        self.preprocess = preprocess if preprocess is not None else nn.Identity()
        self.standardize = Standardize(mean, std)
        self.net = net
        self.info = info or ClassifierInfo()
        self.half: torch.dtype | None = None  # set per cell by the core (`--precision`)
        if self.info.certifies and not callable(getattr(type(self), "certify", None)):
            raise PluginError(
                f"classifier class {type(self).__qualname__}: info.certifies is True but it has "
                "no certify(x) method; define certify or pass certifies=False"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(self.preprocess(x)))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` (a subclass's own too), under autocast when `--precision` set `half`:
        the pipeline runs in bf16/fp16, what the attack sees (logits, input grads) is fp32."""
        if self.half is None:
            return super().__call__(x)
        with torch.autocast(x.device.type, dtype=self.half):
            return super().__call__(x).float()

    def set_standardization(self, mean: float, std: float) -> None:
        """Fit the standardisation constants (done once, from training data)."""
        self.standardize.mean.fill_(mean)
        self.standardize.std.fill_(std)


@dataclass
class FitContext:
    """What a defense gets to build and train its classifier."""

    info: DatasetInfo
    train: Split
    val: Split
    build_net: Callable[[], nn.Module]
    train_spec: TrainSpec
    device: torch.device
    seed: int
    cache_dir: Path | None = None  # where a defense may cache per-record derived data


@runtime_checkable
class Defense(Protocol):
    """A defense plugin: builds the defended classifier (architecture), then trains it."""

    name: ClassVar[str]
    kind: ClassVar[DefenseKind]

    def build(self, ctx: FitContext) -> Classifier: ...

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        """Train in place; return a summary (epochs, best validation metric, ...)."""
        ...


@dataclass
class AttackContext:
    """What an attack may use besides the records it attacks."""

    info: DatasetInfo
    device: torch.device
    generator: torch.Generator
    train: Split | None = None  # universal attacks fit on train (or val), evaluate on test
    val: Split | None = None
    cache_dir: Path | None = None

    def fitting(
        self, split: SplitName, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[Split, Split | None]:
        """The records a universal attack fits on (`split`: train or val) and the other split
        held out; without splits, the attacked records themselves and nothing held out."""
        fit, held = (self.train, self.val) if split == "train" else (self.val, self.train)
        if fit is None or len(fit) == 0:
            return Split(x.cpu().numpy(), y.cpu().numpy(), []), None
        return fit, held

    def seed(self, override: int | None = None) -> int:
        """A seed for numpy-side randomness (shuffling): `override`, else drawn from the
        run's generator so it follows the run seed."""
        if override is not None:
            return override
        g = self.generator
        return int(torch.randint(0, 2**31 - 1, (1,), generator=g, device=g.device).item())


class Attacked(NamedTuple):
    """What `Attack.run` may return instead of bare δ: δ and the attack's report of this call
    (a JSON-able dict; `warnings`, a list of strings, are shown with the cell)."""

    delta: torch.Tensor
    report: dict[str, Any]


@runtime_checkable
class Attack(Protocol):
    """An attack plugin: declares its threat model and returns a perturbation in mV (or
    `ecgarena.Attacked(delta, report)`). Optional members: `AttackCapabilities`."""

    name: ClassVar[str]

    def threat_model(self, budget_mv: float | list[float]) -> ThreatModel: ...

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: AttackContext,
    ) -> torch.Tensor | Attacked:
        """Return δ shaped like x (or (1, leads, time) if universal), x + δ being the attack;
        or `Attacked(δ, report)` to report on this call (merged over batches by
        `merge_reports`)."""
        ...


class AttackCapabilities(Protocol):
    """Optional Attack members, checked when the plugin registers (`ecgarena.capabilities`)."""

    default_eps_mv: ClassVar[float]
    """The budget in mV (> 0) a run without `--eps` uses, read from the class before keying."""
    stronger_than: ClassVar[tuple[str, ...]]
    """Attack names this one must not do less damage than; the consistency check compares."""
    eot: bool
    """True when the attack averages over a randomized defense (EOT): no EOT warning then."""

    def expand_budget(self, eps_mv: float, leads: tuple[str, ...]) -> float | list[float]:
        """Per-lead budgets (≤ ε) from a scalar ε and the lead names, before `threat_model`."""
        ...

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """One report for the cell from the per-batch reports of `Attacked` returns, after
        crafting (a staticmethod or classmethod)."""
        ...
