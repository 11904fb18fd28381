"""`CellResult`: the typed record of one cell that the store writes, `--json` prints and
`results`, `render` and `plot` read. Strict JSON: a NaN or infinity becomes null, and
`nulls` says for each such value why it is undefined."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Number = float | None

# Why a metric can be undefined, by its field name (the last part of its path).
UNDEFINED = {
    "macro_auc": "undefined: no scored class has both a positive and a negative record",
    "fooling_rate": "undefined: no record was classified correctly when clean",
    "abstain_rate": "undefined: no records",
    "average": "undefined: no record was right when clean for member 0",
    "ensemble_accuracy": "undefined: no record was right when clean for member 0",
}
UNDEFINED_ELSE = "undefined: not a finite number for the records it was computed on"


class Block(BaseModel):
    """A sub-model whose named fields are typed; plugin-specific extras are kept as given."""

    model_config = ConfigDict(extra="allow")


class Scores(Block):
    """Headline metrics on one set of records (clean or attacked)."""

    n: int
    macro_f1: Number
    macro_auc: Number = None
    accuracy: Number
    per_class_f1: dict[str, Number] = {}


class Check(BaseModel):
    """One audit check, as the core ran it."""

    name: str
    passed: bool
    detail: str


class Audit(BaseModel):
    """The core's audit of every attack call of the cell."""

    passed: bool
    checks: list[Check]


class Gate(Block):
    """The clean-model gate: degenerate against the trivial baseline, and why."""

    degenerate: bool
    reasons: list[str]


class Fooling(Block):
    """Fooling rate over clean-correct records, flip rate over all."""

    fooling_rate: Number
    flip_rate: Number
    n_correct_clean: int


class Intervals(Block):
    """Bootstrap intervals of the clean and attacked metrics and the fooling rate."""

    resamples: int
    seed: int
    level: float
    clean: dict[str, list[float] | None]
    adversarial: dict[str, list[float] | None]
    fooling_rate: list[float] | None = None


class Timings(Block):
    """Seconds spent in each stage of the cell."""

    data_s: float
    train_s: float
    clean_eval_s: float
    attack_s: float
    adv_eval_s: float
    total_s: float


class Perturbation(Block):
    """Size and shape of the attack's δ: norms (mV), SNR, SSIM, band energy and Welch PSD."""

    linf_mv: float
    l2_mv: float
    per_lead_max_mv: list[float]
    snr_db: Number
    ssim: Number = None
    ssim_min: Number = None
    cutoff_hz: float
    energy_above_cutoff: float
    psd: dict[str, list[Number]] = {}


class Training(Block):
    """The defense's training summary (its own fields kept) and where its weights live."""

    cached: bool = False
    key: str | None = None
    weights: str | None = None
    rebuilt: str | None = None


class Certification(Block):
    """Certified accuracy of a certifying classifier at radii (mV, in its `norm`)."""

    n: int
    accuracy: Number
    abstain_rate: Number
    median_radius_mv: Number
    certified_accuracy: dict[str, Number]
    norm: Literal["linf", "l2"] = "l2"


class Ensemble(Block):
    """An ensemble's member accuracies and P(≥k of K correct) with Wilson intervals; the
    member-targeted attacks and the DNA paper's member-0 protocol when run."""

    members: int
    protocol: str
    member_accuracy: dict[str, list[float]]
    at_least_k_correct: dict[str, dict[int, Number]]
    at_least_k_interval: dict[str, dict[int, list[float] | None]] = {}
    member_transfer: dict[str, Any] | str | None = None
    member0_protocol: dict[str, Any] | None = None


class CellResult(BaseModel):
    """One cell: its spec and provenance, clean and attacked numbers side by side with their
    intervals, the audit, the gate, and optional blocks (certification, ensemble, transfer
    source, universal perturbation). A failed cell has `error` and no numbers."""

    model_config = ConfigDict(extra="forbid")

    key: str
    status: Literal["done", "failed", "skipped"]
    spec: dict[str, Any]
    data_key: str | None = None
    task: Literal["multiclass", "multilabel"] | None = None
    threat: dict[str, Any] | None = None
    contract: dict[str, Any] | None = None
    isolated: bool = False
    device: str | None = None
    versions: dict[str, str | None] = {}
    classifier: dict[str, Any] | None = None
    training: Training | None = None
    clean: Scores | None = None
    adversarial: Scores | None = None
    intervals: Intervals | None = None
    trivial: dict[str, Any] | None = None
    gate: Gate | None = None
    thresholds: dict[str, Any] | None = None
    fooling: Fooling | None = None
    targets: dict[str, Any] | None = None
    perturbation: Perturbation | None = None
    audit: Audit | None = None
    warnings: list[str] = []
    timings: Timings | None = None
    certification: Certification | None = None
    attack_report: dict[str, Any] | None = None
    ensemble: Ensemble | None = None
    source: dict[str, Any] | None = None
    universal_perturbation: dict[str, Any] | None = None
    artifact: str | None = None
    error: str | None = None
    traceback: str | None = None
    nulls: dict[str, str] = {}

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> CellResult:
        """Validate a freshly computed result, turning NaN/inf into null with the reason."""
        nulls: dict[str, str] = dict(raw.get("nulls") or {})
        clean = finite(raw, "", nulls)
        return cls.model_validate({**clean, "nulls": nulls})

    @property
    def passed(self) -> bool:
        """Whether the cell kept its threat model (a failed cell has no audit: True)."""
        return self.audit is None or self.audit.passed

    def row(self) -> dict[str, Any]:
        """The strict-JSON form the store writes and `--json` prints (no NaN, no inf)."""
        return self.model_dump(mode="json", exclude_none=False)


def finite(value: Any, path: str, nulls: dict[str, str]) -> Any:
    """`value` with every non-finite float replaced by None, its path and reason in `nulls`."""
    if isinstance(value, float) and not math.isfinite(value):
        leaf = path.rsplit(".", 1)[-1]
        nulls[path] = UNDEFINED.get(leaf, UNDEFINED_ELSE) + ("" if math.isnan(value) else " (inf)")
        return None
    if isinstance(value, dict):
        return {k: finite(v, f"{path}.{k}" if path else str(k), nulls) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v, f"{path}[{i}]", nulls) for i, v in enumerate(value)]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalars
        return finite(value.item(), path, nulls)
    return value
