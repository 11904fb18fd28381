"""The threat contract: the core, not the attack, decides what a perturbation may be.

The run's budget (per lead, after the attack's `expand_budget`) is the contract's budget; the
attack's declared threat model contributes its norm, band limit, universality and targeting,
and may only narrow the budget. Tolerances and band margins are core constants here, never
attack fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .errors import PluginError
from .specs import Budget, ThreatModel, describe_validation_error

BUDGET_TOLERANCE_MV = 1e-5  # float slack on every budget comparison
BAND_MARGIN_HZ = 10.0  # transition band above a declared band limit
BAND_TOLERANCE = 0.02  # energy share a lead may carry above band limit + margin
QUIET_LEAD = 1e-3  # a lead whose δ RMS is below this fraction of its budget has no band to judge


@dataclass(frozen=True)
class Contract:
    """What an attack gets (`threat`) and is audited against, and how its declaration
    tried to widen the run's budget (`problems`, each a violation)."""

    threat: ThreatModel
    declared: ThreatModel
    problems: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the contract, and the declaration when it differed."""
        out: dict[str, Any] = {"contract": self.threat.model_dump(mode="json")}
        if self.declared != self.threat:
            out["declared"] = self.declared.model_dump(mode="json")
        if self.problems:
            out["problems"] = list(self.problems)
        return out


def _per_lead(budget: Budget, n_leads: int) -> list[float]:
    return ThreatModel(budget_mv=budget).lead_budgets(n_leads)


def _exceeding(got: list[float], limit: list[float], leads: tuple[str, ...]) -> list[str]:
    return [
        f"{g:g} mV on lead {name} (run's budget {lim:g} mV)"
        for g, lim, name in zip(got, limit, leads)
        if g > lim + BUDGET_TOLERANCE_MV
    ]


def build_contract(attack: Any, eps: Budget, leads: tuple[str, ...]) -> Contract:
    """The contract for `attack` at the run's budget `eps` on data with `leads`.

    A scalar ε goes through the attack's `expand_budget` (a per-lead profile) when it has one;
    the profile may lower leads below ε, never raise one above it. The declared threat model's
    budget is then capped lead by lead at the run's; any excess is recorded as a problem.
    """
    n = len(leads)
    problems: list[str] = []
    budget: Budget = eps
    if not isinstance(eps, list) and hasattr(attack, "expand_budget"):
        expanded = attack.expand_budget(eps, leads)
        over = _exceeding(_per_lead(expanded, n), [eps] * n, leads)
        if over:
            problems.append("expand_budget raised the budget: " + "; ".join(over))
        budget = [min(b, eps) for b in _per_lead(expanded, n)] if over else expanded
    run_leads = _per_lead(budget, n)  # a wrong per-lead length fails here, before training
    try:
        declared: ThreatModel = attack.threat_model(budget)
    except ValidationError as e:
        raise PluginError(
            describe_validation_error(f"threat model declared by attack {attack.name!r}", e)
            + " (tolerances and band margins are core constants, not ThreatModel fields)"
        ) from None
    if not isinstance(declared, ThreatModel):
        raise PluginError(
            f"attack {attack.name!r}.threat_model returned {type(declared).__name__}, "
            "not an ecgarena.ThreatModel"
        )
    capped, problem = _cap(declared, budget, run_leads, leads)
    if problem:
        problems.append("declared threat model is wider than the run's: " + problem)
    threat = declared.model_copy(update={"budget_mv": capped})
    return Contract(threat=threat, declared=declared, problems=problems)


def _cap(
    declared: ThreatModel, budget: Budget, run_leads: list[float], leads: tuple[str, ...]
) -> tuple[Budget, str]:
    """The declared budget capped at the run's, and what exceeded it ('' if nothing).

    ℓ∞ compares lead by lead. For ℓ2 a scalar bounds the whole record and a list each lead:
    per-lead ℓ2 budgets fit a whole-record ε only while their root sum of squares does, and a
    whole-record radius fits per-lead budgets only up to their smallest.
    """
    got = declared.lead_budgets(len(leads))
    tol = BUDGET_TOLERANCE_MV
    if declared.norm == "l2" and isinstance(declared.budget_mv, list) != isinstance(budget, list):
        if isinstance(declared.budget_mv, list):  # per-lead balls inside one record ball
            total = sum(g * g for g in got) ** 0.5
            if total > budget + tol:
                return budget, (
                    f"per-lead ℓ2 budgets {got} mV (√Σε² = {total:g}) above the run's "
                    f"whole-record ℓ2 {budget:g} mV"
                )
            return list(got), ""
        smallest = min(run_leads)
        if declared.budget_mv > smallest + tol:
            return smallest, (
                f"whole-record ℓ2 {declared.budget_mv:g} mV above the smallest per-lead "
                f"budget {smallest:g} mV"
            )
        return declared.budget_mv, ""
    over = _exceeding(got, run_leads, leads)
    capped = [min(g, r) for g, r in zip(got, run_leads)]
    scalar = not isinstance(budget, list) and not isinstance(declared.budget_mv, list)
    return (capped[0] if scalar else capped), "; ".join(over)
