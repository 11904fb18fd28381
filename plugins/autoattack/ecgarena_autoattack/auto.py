"""`auto`: the per-record worst case over APGD-CE → APGD-DLR → Square, each call reporting
which attack broke each record; pooled over batches, the gradient-masking check is redone on
all records."""

from __future__ import annotations

import statistics
from typing import Any, ClassVar, Literal

import ecgarena
import torch
from ecgarena import Attacked, Classifier, ThreatModel, eval_mode, margin
from pydantic import Field

from .apgd import run_apgd
from .dlr_stage import DLRPlan, dlr_plan, plan_label, run_dlr_stage
from .options import NormOption
from .square import run_square

VERSIONS: dict[str, dict[str, int]] = {
    "standard": {"steps": 100, "n_queries": 5000, "n_target_classes": 9},
    "fast": {"steps": 20, "n_queries": 500, "n_target_classes": 3},
}
STAGES = ("clean", "apgd-ce", "apgd-dlr", "square")
SETTINGS = ("version", "steps", "n_queries", "dlr_stage")  # the same in every call of a cell


def auto_report(
    settings: dict[str, Any],
    broken_by: list[str | None],
    gradient_attacked: int,
    square_attacked: int,
    square_queries: list[int],
) -> dict[str, Any]:
    """`auto`'s report over the records of `broken_by` (one call or several pooled): counts
    per attack, Square's queries, and the gradient-masking check."""
    counts = {s: sum(b == s for b in broken_by) for s in STAGES}
    n_square, n = counts["square"], len(broken_by)
    limit = max(1.0, 0.02 * gradient_attacked)
    warnings = []
    if n_square > limit:
        warnings.append(
            f"gradient masking suspected: square broke {n_square} of {square_attacked} records "
            "that apgd-ce and apgd-dlr failed on"
        )
    q = square_queries
    robust = sum(b is None for b in broken_by)
    return {
        **{key: settings[key] for key in SETTINGS},
        "records": n,
        "broken_by_counts": counts,
        "robust": robust,
        "robust_accuracy": robust / n if n else None,
        "broken_by": list(broken_by),
        "gradient_attacked": gradient_attacked,
        "square_attacked": square_attacked,
        "square_queries_mean": statistics.fmean(q) if q else None,
        "square_queries_median": statistics.median(q) if q else None,
        "square_queries": list(q),
        "masking_threshold": limit,
        "warnings": warnings,
    }


def credit(
    left: torch.Tensor, fooled: torch.Tensor, stage: str, by: list[str | None]
) -> torch.Tensor:
    """Credit `stage` with the records of `left` it fooled; the records still left."""
    for i in left[fooled].tolist():
        by[i] = stage
    return left[~fooled]


class AutoAttack(NormOption):
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

    def setting(self, key: str) -> int:
        """The value in use for steps / n_queries / n_target_classes."""
        value = getattr(self, key)
        return VERSIONS[self.version][key] if value is None else value

    def plan(self, task: str, k: int) -> DLRPlan:
        """The DLR stage for the task: targeted DLR (K ≥ 4), DLR (K = 3), else the margin."""
        if task == "multilabel" or k == 3:
            return dlr_plan(task, k, False, 0, self.name)
        if k >= 4:
            return dlr_plan(task, k, True, self.setting("n_target_classes"), self.name)
        return "neg_margin", 0

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> Attacked:
        task = ctx.info.task
        plan = self.plan(task, len(ctx.info.classes))
        steps, g = self.setting("steps"), ctx.generator
        delta = torch.zeros_like(x)
        by: list[str | None] = [None] * len(x)
        queries: list[int] = []
        with eval_mode(classifier):
            with torch.no_grad():
                clean_wrong = margin(classifier(x), y, task) < 0
            for i in clean_wrong.nonzero().flatten().tolist():
                by[i] = "clean"
            left = (~clean_wrong).nonzero().flatten()
            gradient_attacked = left.numel()
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
                left = credit(left, ce.fooled, "apgd-ce", by)
            if left.numel():
                dlr = run_dlr_stage(
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
                left = credit(left, dlr.fooled, "apgd-dlr", by)
            square_attacked = left.numel()
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
                queries = sq.queries.tolist()
                delta[left[sq.fooled]] = sq.delta[sq.fooled].to(x.dtype)
                credit(left, sq.fooled, "square", by)
        settings = {
            "version": self.version,
            "steps": steps,
            "n_queries": self.setting("n_queries"),
            "dlr_stage": plan_label(plan),
        }
        return Attacked(
            delta, auto_report(settings, by, gradient_attacked, square_attacked, queries)
        )

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Which attack broke each record, in the order attacked over all batch calls, and
        the counts and gradient-masking check recomputed on all of them."""
        return auto_report(
            reports[0],
            [b for r in reports for b in r["broken_by"]],
            sum(r["gradient_attacked"] for r in reports),
            sum(r["square_attacked"] for r in reports),
            [q for r in reports for q in r["square_queries"]],
        )
