"""Carlini–Wagner ℓ2 (2017) for ECG: Adam on δ itself in mV (no tanh box, ECG has no [0, 1]
range), a binary search over the constant c, and the smallest successful δ kept per record.

The report's minimal-distortion statistics (`found_adversarial`, `median_min_l2_mv`) count only
the records the model classifies correctly when clean (`counted_records`): a record already
misclassified when clean is "adversarial" at 0 mV, which would inflate the success count and
pull the median towards 0 (`misclassified_clean` says how many were left out). Those records
are still attacked and returned (δ = 0: the first iterate already misclassifies them).
"""

from __future__ import annotations

from typing import ClassVar

import ecgarena
import torch
from ecgarena import Options, eval_mode, l2_norms, margin, project
from pydantic import Field, PrivateAttr


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
    _norms: list[float] = PrivateAttr(default_factory=list)
    _tried: int = PrivateAttr(0)
    _counted: int = PrivateAttr(0)

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(norm="l2", budget_mv=budget_mv)

    @property
    def report(self) -> dict[str, float | int]:
        """Unbounded success count and the median ℓ2 (mV) of the minimal adversarial δ found,
        over the `counted_records` classified correctly when clean (of `records` attacked)."""
        norms = sorted(self._norms)
        return {
            "records": self._tried,
            "counted_records": self._counted,
            "misclassified_clean": self._tried - self._counted,
            "found_adversarial": len(norms),
            "median_min_l2_mv": norms[len(norms) // 2] if norms else float("nan"),
        }

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
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
        self._norms += best_norm[found & correct].tolist()
        self._tried += n
        self._counted += int(correct.sum())
        chosen = torch.where(found.view(-1, 1, 1), best, last)
        return project(chosen, threat).detach()
