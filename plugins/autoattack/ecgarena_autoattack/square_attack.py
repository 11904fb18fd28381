"""`square`: the Square Attack, score-based random search without gradients, each call
reporting its records, how many misclassify and the queries each record used."""

from __future__ import annotations

import statistics
from typing import Any, ClassVar

import ecgarena
import torch
from ecgarena import Attacked, Classifier, ThreatModel, eval_mode
from pydantic import Field

from .options import NormOption
from .square import run_square


def square_report(
    n_queries: int, p_init: float, misclassified: int, queries: list[int]
) -> dict[str, Any]:
    """Square's report over the records whose per-record `queries` are given."""
    n = len(queries)
    return {
        "n_queries": n_queries,
        "p_init": p_init,
        "records": n,
        "misclassified": misclassified,
        "misclassified_rate": misclassified / n if n else None,
        "queries_mean": statistics.fmean(queries) if queries else None,
        "queries_median": statistics.median(queries) if queries else None,
        "queries": queries,
        "warnings": [],
    }


class SquareAttack(NormOption):
    """Square Attack: score-based random search, no gradients (the check against gradient
    masking). Margin loss; a candidate is kept when it lowers the margin, a record stops once
    misclassified. 1-D adaptation (ours): ℓ∞ starts from one ±ε sign per time sample shared
    by all leads (scaled per lead), and a "square" is a time window of max(1, round(p·T))
    samples on all leads with one random ±ε_l per lead; ℓ2 follows the paper's two-window mass
    moves with a 1-D pseudo-Gaussian (see `ecgarena_autoattack.square`)."""

    name: ClassVar[str] = "square"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise",)
    n_queries: int = Field(
        5000, ge=1, le=1_000_000, description="forward passes per record, initialisation included"
    )
    p_init: float = Field(
        0.8,
        gt=0,
        le=1,
        description="initial share of the record a window covers (halved on the schedule)",
    )

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> Attacked:
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
        report = square_report(
            self.n_queries, self.p_init, int(res.fooled.sum()), res.queries.tolist()
        )
        return Attacked(res.delta.to(x.dtype), report)

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Misclassified records summed, per-record queries pooled over the batch calls."""
        first = reports[0]
        return square_report(
            first["n_queries"],
            first["p_init"],
            sum(r["misclassified"] for r in reports),
            [q for r in reports for q in r["queries"]],
        )
