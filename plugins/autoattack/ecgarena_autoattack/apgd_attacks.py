"""`apgd-ce` and `apgd-dlr`: Auto-PGD on the cross-entropy and on the DLR-type losses, each
call reporting its records, how many misclassify and its η halvings (summed over batches)."""

from __future__ import annotations

from typing import Any, ClassVar

import ecgarena
import torch
from ecgarena import Attacked, Classifier, ThreatModel, eval_mode
from pydantic import Field

from .apgd import APGDResult, checkpoints, run_apgd
from .dlr_stage import dlr_plan, plan_label, run_dlr_stage
from .options import NormOption


def apgd_report(
    loss: str, steps: int, restarts: int, records: int, misclassified: int, halvings: int
) -> dict[str, Any]:
    """An APGD attack's report over `records` records (one call or several pooled)."""
    n = records
    return {
        "loss": loss,
        "steps": steps,
        "restarts": restarts,
        "checkpoints": checkpoints(steps),
        "records": n,
        "misclassified": misclassified,
        "misclassified_rate": misclassified / n if n else None,
        "step_halvings": halvings,
        "mean_step_halvings": halvings / n if n else None,
        "warnings": [],
    }


class APGDOptions(NormOption):
    """What APGD-CE and APGD-DLR share: steps, restarts, ρ, and how their reports pool."""

    steps: int = Field(100, ge=1, le=10_000, description="iterations N per run (AutoAttack: 100)")
    restarts: int = Field(
        1, ge=1, le=100, description="random starts; later ones only on records not yet broken"
    )
    rho: float = Field(
        0.75, gt=0, le=1, description="ρ: halve η when fewer than ρ of the steps raised the loss"
    )

    def attacked(self, loss: str, res: APGDResult, dtype: torch.dtype) -> Attacked:
        """δ and this call's report."""
        report = apgd_report(
            loss,
            self.steps,
            self.restarts,
            len(res.fooled),
            int(res.fooled.sum()),
            int(res.halvings.sum()),
        )
        return Attacked(res.delta.to(dtype), report)

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Records, misclassified records and η halvings summed over the batch calls."""
        first = reports[0]
        return apgd_report(
            first["loss"],
            first["steps"],
            first["restarts"],
            sum(r["records"] for r in reports),
            sum(r["misclassified"] for r in reports),
            sum(r["step_halvings"] for r in reports),
        )


class APGDCEAttack(APGDOptions):
    """APGD-CE: Auto-PGD on the cross-entropy (multilabel: BCE-with-logits meaned over the
    labels). ℓ∞ sign steps / ℓ2 normalised steps, η = 2ε halved at the paper's checkpoints,
    momentum 0.75, random start; returns per record a misclassifying δ if any iterate
    misclassified (the highest-loss one), else the highest-loss δ."""

    name: ClassVar[str] = "apgd-ce"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise", "fgsm")

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> Attacked:
        task = ctx.info.task
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
        return self.attacked("bce-mean" if task == "multilabel" else "ce", res, x.dtype)


class APGDDLRAttack(APGDOptions):
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

    def threat_model(self, budget_mv: float | list[float]) -> ThreatModel:
        return ThreatModel(norm=self.norm, budget_mv=budget_mv, targeted=self.targeted)

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> Attacked:
        task = ctx.info.task
        plan = dlr_plan(
            task, len(ctx.info.classes), self.targeted, self.n_target_classes, self.name
        )
        with eval_mode(classifier):
            res = run_dlr_stage(
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
        return self.attacked(plan_label(plan), res, x.dtype)
