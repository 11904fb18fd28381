"""Pydantic specs: the threat model an attack declares, and the run/matrix a user asks for
(with its `TrainSpec`, from `ecgarena.train_spec`)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import UserError
from .train_spec import TrainSpec
from .units import parse_mv

Norm = Literal["linf", "l2"]
Budget = float | list[float]


def _budget(value: Any) -> Budget | None:
    """Accept a scalar or a per-lead list, each a number in mV or a string with a unit.

    None (no budget given) means the attack's own default budget.
    """
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("a per-lead budget list must not be empty")
        return [parse_mv(v) for v in value]
    return parse_mv(value)


class ThreatModel(BaseModel):
    """What an attack may do; the core audits every perturbation against it.

    Tolerances and band margins are core constants (`ecgarena.contract`), not fields here: an
    attack cannot loosen its own audit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    norm: Norm = "linf"
    budget_mv: Budget = Field(description="ε in mV: a scalar, or one value per lead")
    band_hz: float | None = Field(None, gt=0, description="low-pass limit of the perturbation")
    universal: bool = False
    targeted: bool = False
    access: Literal["white-box", "transfer"] = "white-box"

    _check_budget = field_validator("budget_mv", mode="before")(_budget)

    def lead_budgets(self, n_leads: int) -> list[float]:
        """The budget of each lead; a scalar ℓ∞ budget applies to every lead."""
        if isinstance(self.budget_mv, list):
            if len(self.budget_mv) != n_leads:
                raise UserError(
                    f"per-lead budget has {len(self.budget_mv)} values but the data has "
                    f"{n_leads} leads"
                )
            return list(self.budget_mv)
        return [self.budget_mv] * n_leads


Precision = Literal["fp32", "bf16", "fp16"]
ATTACK_BATCH = 128  # records per attack call unless --attack-batch says otherwise


class RunSpec(BaseModel):
    """One cell: dataset × model × defense × attack × budget × seed."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = "synthetic"
    model: str = "cnn"
    defense: str = "none"
    attack: str = "pgd"
    eps: Budget | None = Field(
        None, description="attack budget in mV (scalar or per lead); None: the attack's default"
    )
    seed: int = Field(0, ge=0)
    device: Literal["cpu", "cuda", "auto"] = "auto"
    precision: Precision = Field(
        "fp32", description="forward passes of evaluation and attacks (autocast); δ stays fp32"
    )
    attack_batch: int = Field(
        ATTACK_BATCH, ge=1, le=65536, description="records per attack call (fill the device)"
    )
    data_dir: Path | None = None
    dataset_params: dict[str, Any] = Field(default_factory=dict)
    model_params: dict[str, Any] = Field(default_factory=dict)
    defense_params: dict[str, Any] = Field(default_factory=dict)
    attack_params: dict[str, Any] = Field(default_factory=dict)
    source_model: str | None = Field(
        None, description="transfer attack: craft on this model, evaluate on `model`"
    )
    source_defense: str | None = Field(
        None, description="transfer attack: the source model's defense (default: `defense`)"
    )
    source_model_params: dict[str, Any] = Field(default_factory=dict)
    source_defense_params: dict[str, Any] = Field(default_factory=dict)
    eval_dataset: str | None = Field(
        None, description="zero-shot: train on `dataset`, evaluate on every record of this one"
    )
    eval_data_dir: Path | None = None
    eval_dataset_params: dict[str, Any] = Field(default_factory=dict)
    train: TrainSpec = Field(default_factory=TrainSpec)
    max_attack_records: int | None = Field(None, ge=1, description="cap on attacked test records")

    _check_eps = field_validator("eps", mode="before")(_budget)

    @model_validator(mode="after")
    def _source_options_need_source(self) -> RunSpec:
        """Source options without a source piece would be ignored silently: refuse them."""
        for piece in ("model", "defense"):
            if getattr(self, f"source_{piece}_params") and getattr(self, f"source_{piece}") is None:
                raise ValueError(
                    f"source_{piece}_params {getattr(self, f'source_{piece}_params')!r} given "
                    f"without source_{piece}: name the transfer source's {piece} "
                    f"(--source-{piece}) or drop its options"
                )
        return self

    @property
    def transfer(self) -> bool:
        """Whether the attack is crafted on another (model, defense) than the one evaluated."""
        fields = ("model", "defense", "model_params", "defense_params")
        src = self.source()
        return any(getattr(src, f) != getattr(self, f) for f in fields)

    def source(self) -> RunSpec:
        """The spec of the classifier the attack is crafted on (itself unless transfer)."""
        if self.source_model is None and self.source_defense is None:
            return self
        model, defense = self.source_model or self.model, self.source_defense or self.defense
        return self.model_copy(
            update={
                "model": model,
                "defense": defense,
                "model_params": self.source_model_params
                if self.source_model
                else self.model_params,
                "defense_params": self.source_defense_params
                if self.source_defense
                else self.defense_params,
                "source_model": None,
                "source_defense": None,
                "source_model_params": {},
                "source_defense_params": {},
            }
        )

    def key(self) -> str:
        """Stable identity of the cell: every field that changes its numbers (not where data lives)."""
        payload = self.model_dump(mode="json", exclude={"data_dir", "eval_data_dir"})
        if self.eval_dataset is None:  # keys of cells stored before zero-shot existed stay valid
            del payload["eval_dataset"], payload["eval_dataset_params"]
        for name, default in (("precision", "fp32"), ("attack_batch", ATTACK_BATCH)):
            if payload[name] == default:  # likewise for cells stored before the option existed
                del payload[name]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class MatrixSpec(BaseModel):
    """The cross product datasets × models × defenses × attacks × budgets × seeds."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(default_factory=lambda: ["synthetic"], min_length=1)
    models: list[str] = Field(default_factory=lambda: ["cnn"], min_length=1)
    defenses: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    attacks: list[str] = Field(default_factory=lambda: ["pgd"], min_length=1)
    eps: list[Budget | None] = Field(default_factory=lambda: [None], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    source_model: str | None = Field(
        None, description="transfer: craft every attack on this model, evaluate on `models`"
    )
    source_defense: str | None = None
    eval_dataset: str | None = Field(
        None, description="zero-shot: evaluate every cell on all records of this dataset"
    )
    eval_data_dir: Path | None = None
    device: Literal["cpu", "cuda", "auto"] = "auto"
    precision: Precision = "fp32"
    attack_batch: int = Field(ATTACK_BATCH, ge=1, le=65536)
    data_dir: Path | None = None
    data_dirs: dict[str, Path] = Field(
        default_factory=dict, description="folder per dataset name (else `data_dir`)"
    )
    pairs: list[tuple[str, str]] | None = Field(
        None, description="(model, defense) pairs run instead of models × defenses"
    )
    params: dict[str, dict[str, Any] | list[dict[str, Any]]] = Field(
        default_factory=dict,
        description="per-plugin options keyed by plugin name; a list of option sets runs each",
    )
    train: TrainSpec = Field(default_factory=TrainSpec)
    max_attack_records: int | None = Field(None, ge=1)

    @field_validator("eps", mode="before")
    @classmethod
    def _check_eps(cls, value: Any) -> list[Budget | None]:
        return [_budget(v) for v in (value if isinstance(value, list) else [value])]

    def options(self, name: str | None, kind: str = "") -> list[dict[str, Any]]:
        """The option sets of a plugin: one dict, or each of a list (a grid over variants).
        `KIND.NAME` (e.g. `defenses.caslcnet`) addresses one kind where a model and a defense
        share a name; plain `NAME` applies to every kind of that name."""
        given = self.params.get(f"{kind}.{name}", self.params.get(name or "", {}))
        return given if isinstance(given, list) else [given]

    def cells(self) -> list[RunSpec]:
        """Expand into run specs, grouped so each defended model is trained once, in order."""
        pairs = self.pairs or [(m, f) for m in self.models for f in self.defenses]
        source = (self.options(self.source_model) if self.source_model else [{}])[0]
        source_defense = (self.options(self.source_defense) if self.source_defense else [{}])[0]
        return [
            RunSpec(
                dataset=d,
                model=m,
                defense=f,
                attack=a,
                eps=e,
                seed=s,
                device=self.device,
                precision=self.precision,
                attack_batch=self.attack_batch,
                data_dir=self.data_dirs.get(d, self.data_dir),
                dataset_params=dp,
                model_params=mp,
                defense_params=fp,
                attack_params=ap,
                source_model=self.source_model,
                source_defense=self.source_defense,
                source_model_params=source,
                source_defense_params=source_defense,
                eval_dataset=self.eval_dataset,
                eval_data_dir=self.data_dirs.get(self.eval_dataset or "", self.eval_data_dir),
                eval_dataset_params=self.options(self.eval_dataset)[0],
                train=self.train,
                max_attack_records=self.max_attack_records,
            )
            for d in self.datasets
            for dp in self.options(d)
            for m, f in pairs
            for mp in self.options(m, "models")
            for fp in self.options(f, "defenses")
            for s in self.seeds
            for a in self.attacks
            for ap in self.options(a)
            for e in self.eps
        ]


def describe_validation_error(what: str, error: ValidationError) -> str:
    """One readable line: which field is wrong, what it got, and what is valid."""
    parts = []
    for err in error.errors():
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown option"
        got = err.get("input")
        hidden = isinstance(got, dict) or err["type"] == "missing" or repr(got) in msg
        shown = "" if hidden else f" (got {got!r})"
        parts.append(f"{field}: {msg}{shown}" if field else f"{msg}{shown}")
    return f"invalid {what}: " + "; ".join(parts)


def validate(model: type[BaseModel], data: dict[str, Any], what: str) -> Any:
    """Build a spec, turning pydantic's errors into one UserError line."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise UserError(describe_validation_error(what, e)) from None


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML spec file; a missing or malformed file is a one-line UserError."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {str(path)!r} is not valid TOML: {e}") from None
