"""The core's audit of every perturbation against the attack's declared threat model.

Attacks never grade themselves: the engine snapshots the inputs and the model's train/eval
modes, runs the attack, then calls `audit` on what came back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .constraints import energy_above, l2_norms, lead_budget
from .specs import ThreatModel


@dataclass(frozen=True)
class Check:
    """One audited property: its name, whether it held, and the measured value vs its limit."""

    name: str
    passed: bool
    detail: str


@dataclass
class AuditReport:
    """All checks of one attack run; `passed` only if every check held."""

    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def violations(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    @classmethod
    def merge(cls, reports: list[AuditReport]) -> AuditReport:
        """One report over several batches: a check holds only if it held in every batch."""
        merged: dict[str, Check] = {}
        for report in reports:
            for c in report.checks:
                if c.name not in merged or (merged[c.name].passed and not c.passed):
                    merged[c.name] = c
        return cls(list(merged.values()))

    def to_dict(self) -> dict:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def modes(model: nn.Module) -> list[bool]:
    """The train/eval flag of every submodule, to check an attack put them back."""
    return [m.training for m in model.modules()]


def audit(
    x: torch.Tensor,
    x_before: torch.Tensor,
    delta: torch.Tensor,
    threat: ThreatModel,
    fs: float,
    modes_before: list[bool],
    modes_after: list[bool],
) -> AuditReport:
    """Check δ (shape, dtype, device, finiteness, budget, band, universality) and side effects."""
    report = AuditReport()
    add = report.checks.append
    b, n_leads, t = x.shape
    expected = (1, n_leads, t) if threat.universal else tuple(x.shape)
    shape_ok = tuple(delta.shape) in {expected, tuple(x.shape)}
    add(Check("shape", shape_ok, f"got {tuple(delta.shape)}, expected {expected}"))
    add(
        Check(
            "dtype/device",
            delta.dtype == x.dtype and delta.device == x.device,
            f"got {delta.dtype} on {delta.device}, expected {x.dtype} on {x.device}",
        )
    )
    same = torch.equal(x, x_before)
    add(Check("input unchanged", same, "x untouched" if same else "the attack modified x in place"))
    kept = modes_before == modes_after
    add(Check("model mode restored", kept, "modes kept" if kept else "train/eval modes changed"))
    if not shape_ok:
        return report
    d = delta.detach().to(torch.float64)
    finite = bool(torch.isfinite(d).all())
    add(Check("finite", finite, "δ has NaN or inf" if not finite else "all finite"))
    if not finite:
        return report
    eps = lead_budget(threat, n_leads, d)
    tol = threat.tolerance_mv
    if threat.norm == "linf":
        used = d.abs().amax(dim=(0, 2))
        excess = (used - eps.view(-1)).max().item()
        detail = f"max per-lead ℓ∞ excess {excess:+.3g} mV (tolerance {tol:g} mV)"
    else:
        per_lead = isinstance(threat.budget_mv, list)
        bound = eps if per_lead else eps[:, :1]
        excess = (l2_norms(d, per_lead) - bound).max().item()
        detail = f"max ℓ2 excess {excess:+.3g} mV (tolerance {tol:g} mV)"
    add(Check("budget", excess <= tol, detail))
    if threat.band_hz is not None:
        cutoff = threat.band_hz + threat.band_margin_hz
        share = energy_above(d, fs, cutoff).max().item()
        add(
            Check(
                "band limit",
                share <= threat.band_tolerance,
                f"energy above {cutoff:g} Hz is {share:.2%} (allowed {threat.band_tolerance:.2%})",
            )
        )
    if threat.universal:
        same = d.shape[0] == 1 or bool((d == d[:1]).all())
        add(Check("universal", same, "one δ for all records" if same else "δ differs by record"))
    return report
