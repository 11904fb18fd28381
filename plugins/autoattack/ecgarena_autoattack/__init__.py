"""AutoAttack for ECG in mV (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks"; Square: Andriushchenko et al.,
ECCV 2020): `apgd-ce`, `apgd-dlr` (untargeted or targeted), `square` and `auto`, the per-record
worst case over the three in AutoAttack's order.

Losses: multiclass CE / DLR / targeted DLR as in the paper. Multilabel: APGD-CE ascends
BCE-with-logits **meaned** over the labels; APGD-DLR is replaced by the per-label margin loss
−min_c (2y_c − 1)·z_c (push the label nearest to a flip, `ecgarena.margin`); Square
uses that same margin. "Misclassified" always means margin < 0 (multiclass: argmax ≠ y;
multilabel: some label's 0-logit threshold crossed).

Reports accumulate over the engine's batches (one attack instance per cell): `report` is a
property computed from counters kept in the instance, so it always describes every record
attacked so far; `report["warnings"]` lists the cell's warnings.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import ecgarena
import torch
from ecgarena import Options, UserError, eval_mode, margin
from pydantic import Field, PrivateAttr

from .apgd import APGDResult, checkpoints, run_apgd
from .losses import dlr_loss, dlr_targeted_loss, objective
from .square import p_schedule, run_square

__all__ = [
    "APGDCEAttack",
    "APGDDLRAttack",
    "AutoAttack",
    "SquareAttack",
    "checkpoints",
    "dlr_loss",
    "dlr_targeted_loss",
    "objective",
    "p_schedule",
    "run_apgd",
    "run_square",
]


def _ranked_targets(logits: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """Per record, the `n` non-true classes with the highest clean logits, best first `(B, n)`."""
    others = logits.scatter(1, y.long().view(-1, 1), -torch.inf)
    return others.argsort(dim=1, descending=True)[:, :n]


def _dlr_plan(task: str, k: int, targeted: bool, n_targets: int, who: str) -> tuple[str, int]:
    """The objective an APGD-DLR stage uses and its number of target classes (0: untargeted);
    a UserError naming the class count when the task cannot support it."""
    if task == "multilabel":
        if targeted:
            raise UserError(
                f"{who}: targeted DLR is multiclass only; on a multilabel task "
                "use targeted=false (the per-label margin loss)"
            )
        return "neg_margin", 0
    if targeted:
        if k < 4:
            raise UserError(
                f"{who}: targeted DLR needs at least 4 classes (z_π4 and ≥ 3 targets), the "
                f"task has {k}; use targeted=false (untargeted DLR needs ≥ 3 classes)"
            )
        return "dlr_targeted", min(n_targets, k - 1)
    if k < 3:
        raise UserError(
            f"{who}: the DLR loss needs at least 3 classes (z_π3), the task has {k}; "
            "use apgd-ce or square on a 2-class task"
        )
    return "dlr", 0


def _run_dlr_stage(
    clf, x, y, threat, task, plan: tuple[str, int], *, steps, rho, restarts, generator
) -> APGDResult:
    """APGD with the DLR-type objective of `plan`; targeted: one run per target class (the
    top-ranked non-true classes of the clean logits), a record broken if any run broke it."""
    kind, n_targets = plan
    if n_targets == 0:
        return run_apgd(
            clf,
            x,
            y,
            threat,
            kind,
            task,
            steps=steps,
            rho=rho,
            restarts=restarts,
            generator=generator,
        )
    with torch.no_grad():
        targets = _ranked_targets(clf(x), y, n_targets)
    res = None
    for j in range(n_targets):
        res = run_apgd(
            clf,
            x,
            y,
            threat,
            kind,
            task,
            steps=steps,
            rho=rho,
            restarts=restarts,
            generator=generator,
            target=targets[:, j],
            into=res,
        )
    assert res is not None
    return res


class _NormOption(Options):
    """The ball the attack searches: ℓ∞ per lead, or ℓ2 (whole record, or per lead)."""

    norm: Literal["linf", "l2"] = Field(
        "linf", description="linf: per-lead box; l2: whole-record (scalar ε) or per-lead ball"
    )

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(norm=self.norm, budget_mv=budget_mv)


class _APGDOptions(_NormOption):
    steps: int = Field(100, ge=1, le=10_000, description="iterations N per run (AutoAttack: 100)")
    restarts: int = Field(
        1, ge=1, le=100, description="random starts; later ones only on records not yet broken"
    )
    rho: float = Field(
        0.75, gt=0, le=1, description="ρ: halve η when fewer than ρ of the steps raised the loss"
    )
    _records: int = PrivateAttr(0)
    _broken: int = PrivateAttr(0)
    _halvings: int = PrivateAttr(0)

    def _tally(self, res: APGDResult) -> None:
        self._records += len(res.fooled)
        self._broken += int(res.fooled.sum())
        self._halvings += int(res.halvings.sum())

    def _report(self, loss: str) -> dict[str, Any]:
        n = self._records
        return {
            "loss": loss,
            "steps": self.steps,
            "restarts": self.restarts,
            "checkpoints": checkpoints(self.steps),
            "records": n,
            "misclassified": self._broken,
            "misclassified_rate": self._broken / n if n else None,
            "mean_step_halvings": self._halvings / n if n else None,
            "warnings": [],
        }


class APGDCEAttack(_APGDOptions):
    """APGD-CE: Auto-PGD on the cross-entropy (multilabel: BCE-with-logits meaned over the
    labels). ℓ∞ sign steps / ℓ2 normalised steps, η = 2ε halved at the paper's checkpoints,
    momentum 0.75, random start; returns per record a misclassifying δ if any iterate
    misclassified (the highest-loss one), else the highest-loss δ."""

    name: ClassVar[str] = "apgd-ce"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise", "fgsm")
    _loss: str = PrivateAttr("ce")

    @property
    def report(self) -> dict[str, Any]:
        """Records attacked so far (all batches), how many misclassify, mean η halvings."""
        return self._report(self._loss)

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        task = ctx.info.task
        self._loss = "bce-mean" if task == "multilabel" else "ce"
        with eval_mode(classifier):
            res = run_apgd(
                classifier,
                x,
                y,
                threat,
                "ce",
                task,
                steps=self.steps,
                rho=self.rho,
                restarts=self.restarts,
                generator=ctx.generator,
            )
        self._tally(res)
        return res.delta.to(x.dtype)


class APGDDLRAttack(_APGDOptions):
    """APGD-DLR: Auto-PGD on the Difference of Logits Ratio −(z_y − max_{j≠y} z_j)/(z_π1 − z_π3
    + 1e-12) (≥ 3 classes), or with `targeted` the targeted DLR −(z_y − z_t)/(z_π1 − ½(z_π3 +
    z_π4) + 1e-12) (≥ 4 classes) run once per target — the `n_target_classes` (≤ K − 1)
    top-ranked non-true classes of the clean logits — a record broken if any target run
    breaks it. Multilabel: the per-label margin loss −min_c (2y_c − 1)·z_c instead of DLR
    (untargeted only). Scale-invariant in the logits."""

    name: ClassVar[str] = "apgd-dlr"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise",)
    targeted: bool = Field(False, description="targeted DLR, one run per target (K ≥ 4)")
    n_target_classes: int = Field(
        9, ge=1, le=1000, description="targets for targeted DLR (capped at K − 1)"
    )
    _loss: str = PrivateAttr("dlr")

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(norm=self.norm, budget_mv=budget_mv, targeted=self.targeted)

    @property
    def report(self) -> dict[str, Any]:
        """Records attacked so far (all batches), how many misclassify, mean η halvings."""
        return self._report(self._loss)

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        task = ctx.info.task
        plan = _dlr_plan(
            task, len(ctx.info.classes), self.targeted, self.n_target_classes, self.name
        )
        self._loss = plan[0] + (f" ({plan[1]} targets)" if plan[1] else "")
        with eval_mode(classifier):
            res = _run_dlr_stage(
                classifier,
                x,
                y,
                threat,
                task,
                plan,
                steps=self.steps,
                rho=self.rho,
                restarts=self.restarts,
                generator=ctx.generator,
            )
        self._tally(res)
        return res.delta.to(x.dtype)


class _SquareOptions(_NormOption):
    n_queries: int = Field(
        5000, ge=1, le=1_000_000, description="forward passes per record, initialisation included"
    )
    p_init: float = Field(
        0.8,
        gt=0,
        le=1,
        description="initial share of the record a window covers (halved on the schedule)",
    )


class SquareAttack(_SquareOptions):
    """Square Attack: score-based random search, no gradients (the check against gradient
    masking). Margin loss; a candidate is kept when it lowers the margin, a record stops once
    misclassified. 1-D adaptation (ours): ℓ∞ starts from one ±ε sign per time sample shared
    by all leads (scaled per lead), and a "square" is a time window of max(1, round(p·T))
    samples on all leads with one random ±ε_l per lead; ℓ2 follows the paper's two-window mass
    moves with a 1-D pseudo-Gaussian (see `ecgarena_autoattack.square`)."""

    name: ClassVar[str] = "square"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise",)
    _queries: list[int] = PrivateAttr(default_factory=list)
    _broken: int = PrivateAttr(0)

    @property
    def report(self) -> dict[str, Any]:
        """Records attacked so far, how many misclassify, and queries per record."""
        q, n = self._queries, len(self._queries)
        return {
            "n_queries": self.n_queries,
            "p_init": self.p_init,
            "records": n,
            "misclassified": self._broken,
            "misclassified_rate": self._broken / n if n else None,
            "queries_mean": statistics.fmean(q) if q else None,
            "queries_median": statistics.median(q) if q else None,
            "warnings": [],
        }

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        with eval_mode(classifier):
            res = run_square(
                classifier,
                x,
                y,
                threat,
                ctx.info.task,
                n_queries=self.n_queries,
                p_init=self.p_init,
                generator=ctx.generator,
            )
        self._queries += res.queries.tolist()
        self._broken += int(res.fooled.sum())
        return res.delta.to(x.dtype)


VERSIONS: dict[str, dict[str, int]] = {
    "standard": {"steps": 100, "n_queries": 5000, "n_target_classes": 9},
    "fast": {"steps": 20, "n_queries": 500, "n_target_classes": 3},
}
STAGES = ("clean", "apgd-ce", "apgd-dlr", "square")


class AutoAttack(_NormOption):
    """The per-record worst case over APGD-CE → APGD-DLR → Square (AutoAttack's order; FAB-T
    left out). Each attack runs only on the records still classified correctly; records
    misclassified clean count as broken by "clean" (and get δ = 0). The DLR stage is targeted
    DLR when K ≥ 4 (multiclass), untargeted DLR when K = 3, the margin loss
    −(z_y − max_{j≠y} z_j) when K = 2 and the per-label margin loss on multilabel tasks.
    Returns per record the δ of the attack that broke it, else APGD-CE's highest-loss δ.

    `version` sets steps / queries / targets (standard: 100 APGD steps, 9 targets, 5000 Square
    queries; fast: 20, 3, 500); `steps`, `n_queries`, `n_target_classes` override it. The
    report says which attack broke each record and warns of gradient masking when Square
    breaks more than max(1, 2 % of the records the gradient attacks ran on) of the records both
    APGD stages failed on."""

    name: ClassVar[str] = "auto"
    stronger_than: ClassVar[tuple[str, ...]] = (
        "noise",
        "fgsm",
        "pgd",
        "apgd-ce",
        "apgd-dlr",
        "square",
    )
    version: Literal["standard", "fast"] = Field(
        "standard", description="standard: 100 steps, 9 targets, 5000 queries; fast: 20, 3, 500"
    )
    steps: int | None = Field(None, ge=1, le=10_000, description="APGD steps (overrides version)")
    n_queries: int | None = Field(
        None, ge=1, le=1_000_000, description="Square queries per record (overrides version)"
    )
    n_target_classes: int | None = Field(
        None, ge=1, le=1000, description="targeted-DLR targets, capped at K − 1 (overrides version)"
    )
    restarts: int = Field(1, ge=1, le=100, description="APGD random starts per stage (and target)")
    rho: float = Field(0.75, gt=0, le=1, description="APGD ρ")
    p_init: float = Field(0.8, gt=0, le=1, description="Square's initial window share")
    _broken_by: list[str | None] = PrivateAttr(default_factory=list)
    _gradient_attacked: int = PrivateAttr(0)
    _square_attacked: int = PrivateAttr(0)
    _queries: list[int] = PrivateAttr(default_factory=list)
    _dlr: str = PrivateAttr("")

    def setting(self, key: str) -> int:
        """The value in use for steps / n_queries / n_target_classes."""
        value = getattr(self, key)
        return VERSIONS[self.version][key] if value is None else value

    @property
    def report(self) -> dict[str, Any]:
        """Which attack broke each record (in the order attacked, over all batches), counts
        per attack, Square's queries, and the gradient-masking check."""
        by = self._broken_by
        counts = {s: sum(b == s for b in by) for s in STAGES}
        n_square, n_left = counts["square"], self._square_attacked
        limit = max(1.0, 0.02 * self._gradient_attacked)
        warnings = []
        if n_square > limit:
            warnings.append(
                f"gradient masking suspected: square broke {n_square} of {n_left} records "
                "that apgd-ce and apgd-dlr failed on"
            )
        q = self._queries
        return {
            "version": self.version,
            "steps": self.setting("steps"),
            "n_queries": self.setting("n_queries"),
            "dlr_stage": self._dlr,
            "records": len(by),
            "broken_by_counts": counts,
            "robust": sum(b is None for b in by),
            "robust_accuracy": sum(b is None for b in by) / len(by) if by else None,
            "broken_by": list(by),
            "gradient_attacked": self._gradient_attacked,
            "square_attacked": n_left,
            "square_queries_mean": statistics.fmean(q) if q else None,
            "square_queries_median": statistics.median(q) if q else None,
            "masking_threshold": limit,
            "warnings": warnings,
        }

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        task, k = ctx.info.task, len(ctx.info.classes)
        if task == "multilabel":
            plan = _dlr_plan(task, k, False, 0, self.name)
        elif k >= 4:
            plan = _dlr_plan(task, k, True, self.setting("n_target_classes"), self.name)
        elif k == 3:
            plan = _dlr_plan(task, k, False, 0, self.name)
        else:
            plan = ("neg_margin", 0)
        self._dlr = plan[0] + (f" ({plan[1]} targets)" if plan[1] else "")
        steps, g = self.setting("steps"), ctx.generator
        delta = torch.zeros_like(x)
        by: list[str | None] = [None] * len(x)
        with eval_mode(classifier):
            with torch.no_grad():
                clean_wrong = margin(classifier(x), y, task) < 0
            for i in clean_wrong.nonzero().flatten().tolist():
                by[i] = "clean"
            left = (~clean_wrong).nonzero().flatten()
            self._gradient_attacked += left.numel()
            if left.numel():
                ce = run_apgd(
                    classifier,
                    x[left],
                    y[left],
                    threat,
                    "ce",
                    task,
                    steps=steps,
                    rho=self.rho,
                    restarts=self.restarts,
                    generator=g,
                )
                delta[left] = ce.delta.to(x.dtype)  # the fallback for records nothing breaks
                left = self._credit(left, ce.fooled, "apgd-ce", by)
            if left.numel():
                dlr = _run_dlr_stage(
                    classifier,
                    x[left],
                    y[left],
                    threat,
                    task,
                    plan,
                    steps=steps,
                    rho=self.rho,
                    restarts=self.restarts,
                    generator=g,
                )
                delta[left[dlr.fooled]] = dlr.delta[dlr.fooled].to(x.dtype)
                left = self._credit(left, dlr.fooled, "apgd-dlr", by)
            self._square_attacked += left.numel()
            if left.numel():
                sq = run_square(
                    classifier,
                    x[left],
                    y[left],
                    threat,
                    task,
                    n_queries=self.setting("n_queries"),
                    p_init=self.p_init,
                    generator=g,
                )
                self._queries += sq.queries.tolist()
                delta[left[sq.fooled]] = sq.delta[sq.fooled].to(x.dtype)
                self._credit(left, sq.fooled, "square", by)
        self._broken_by += by
        return delta

    @staticmethod
    def _credit(
        left: torch.Tensor, fooled: torch.Tensor, stage: str, by: list[str | None]
    ) -> torch.Tensor:
        for i in left[fooled].tolist():
            by[i] = stage
        return left[~fooled]


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(APGDCEAttack)
    register(APGDDLRAttack)
    register(SquareAttack)
    register(AutoAttack)
