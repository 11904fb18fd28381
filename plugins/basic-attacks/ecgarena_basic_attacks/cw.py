"""Carlini–Wagner ℓ2 (2017) for ECG: Adam on δ itself in mV (no tanh box, ECG has no [0, 1]
range), a binary search over the constant c, and the smallest successful δ kept per record.

The report's minimal-distortion statistics (`found_adversarial`, `median_min_l2_mv`, from the
per-record `min_l2_mv`, pooled over the engine's batch calls) count only the records the model
classifies correctly when clean (`counted_records`): a record already misclassified when clean
is "adversarial" at 0 mV, which would inflate the success count and pull the median towards 0
(`misclassified_clean` says how many were left out). Those records are still attacked and
returned (δ = 0: the first iterate already misclassifies them).
"""

from __future__ import annotations

from typing import Any, ClassVar

import ecgarena
import torch
from ecgarena import (
    Attacked,
    Classifier,
    Options,
    ThreatModel,
    eval_mode,
    l2_norms,
    margin,
    project,
)
from pydantic import Field


def cw_report(records: int, counted: int, min_l2_mv: list[float]) -> dict[str, Any]:
    """Unbounded success count and the median ℓ2 (mV) of the minimal adversarial δ found,
    over the `counted_records` classified correctly when clean (of `records` attacked)."""
    norms = sorted(min_l2_mv)
    return {
        "records": records,
        "counted_records": counted,
        "misclassified_clean": records - counted,
        "found_adversarial": len(norms),
        "median_min_l2_mv": norms[len(norms) // 2] if norms else float("nan"),
        "min_l2_mv": min_l2_mv,
    }


class CWL2Attack(Options):
    """Minimise ‖δ‖₂² + c·max(margin(x+δ), −κ); return the smallest misclassifying δ found
    (else the last iterate), projected onto the declared ℓ2 budget."""

    name: ClassVar[str] = "cw-l2"
    default_eps_mv: ClassVar[float] = 2.0  # whole-record ℓ2, mV
    steps: int = Field(50, ge=1, le=10_000, description="Adam steps per value of c")
    search_steps: int = Field(5, ge=1, le=30, description="binary-search rounds over c")
    initial_const: float = Field(1.0, gt=0, description="first c")
    kappa: float = Field(0.0, ge=0, description="confidence margin κ (logits)")
    lr_mv: float = Field(0.005, gt=0, le=1, description="Adam learning rate on δ, in mV")

    def threat_model(self, budget_mv: float | list[float]) -> ThreatModel:
        return ThreatModel(norm="l2", budget_mv=budget_mv)

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Counts summed; the median over the minimal ℓ2 of every batch's counted records."""
        return cw_report(
            sum(r["records"] for r in reports),
            sum(r["counted_records"] for r in reports),
            [v for r in reports for v in r["min_l2_mv"]],
        )

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> Attacked:
        n = len(x)
        const = torch.full((n,), self.initial_const, device=x.device)
        lower = torch.zeros(n, device=x.device)
        upper = torch.full((n,), torch.inf, device=x.device)
        best = torch.zeros_like(x)
        best_norm = torch.full((n,), torch.inf, device=x.device)
        last = torch.zeros_like(x)
        with eval_mode(classifier):
            with torch.no_grad():
                correct = margin(classifier(x), y, ctx.info.task) >= 0  # wrong ⇔ margin < 0
            for _ in range(self.search_steps):
                delta = torch.zeros_like(x, requires_grad=True)
                opt = torch.optim.Adam([delta], lr=self.lr_mv)
                success = torch.zeros(n, dtype=torch.bool, device=x.device)
                for _ in range(self.steps):
                    m = margin(classifier(x + delta), y, ctx.info.task)
                    sq = delta.flatten(1).pow(2).sum(1)
                    loss = (sq + const * m.clamp_min(-self.kappa)).sum()
                    # gradient for δ only: the model's parameters get no .grad (no side effect)
                    (delta.grad,) = torch.autograd.grad(loss, delta)
                    with torch.no_grad():
                        fooled = m < 0
                        norm = l2_norms(delta, False).flatten()
                        smaller = fooled & (norm < best_norm)
                        best[smaller], best_norm[smaller] = delta[smaller], norm[smaller]
                        success |= fooled
                    opt.step()
                last = delta.detach()
                upper = torch.where(success, torch.minimum(upper, const), upper)
                lower = torch.where(success, lower, torch.maximum(lower, const))
                const = torch.where(torch.isinf(upper), const * 10, (lower + upper) / 2).clamp_max(
                    1e10
                )
        found = torch.isfinite(best_norm)
        report = cw_report(n, int(correct.sum()), best_norm[found & correct].tolist())
        chosen = torch.where(found.view(-1, 1, 1), best, last)
        return Attacked(project(chosen, threat).detach(), report)
