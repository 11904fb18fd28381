"""The option every AutoAttack attack shares: the ball it searches."""

from __future__ import annotations

from typing import Literal

import ecgarena
from ecgarena import Options
from pydantic import Field


class NormOption(Options):
    """The ball the attack searches: ℓ∞ per lead, or ℓ2 (whole record, or per lead)."""

    norm: Literal["linf", "l2"] = Field(
        "linf", description="linf: per-lead box; l2: whole-record (scalar ε) or per-lead ball"
    )

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(norm=self.norm, budget_mv=budget_mv)
