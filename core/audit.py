"""The core's audit of every perturbation against the attack's declared threat model.

Attacks never grade themselves: the engine snapshots the inputs and the model's train/eval
modes, runs the attack, then calls `audit` on what came back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .constraints import energy_above, l2_norms, lead_budget
from .contract import BAND_MARGIN_HZ, BAND_TOLERANCE, BUDGET_TOLERANCE_MV, QUIET_LEAD
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
    def merge(cls, reports: list[AuditReport], sizes: list[int] | None = None) -> AuditReport:
        """One report over several batches (`sizes`: records in each): a check holds only if
        it held in every batch; its detail gives the totals and the first failing batch."""
        if len(reports) == 1:
            return reports[0]
        sizes = sizes or [0] * len(reports)
        total = f"{sum(sizes)} records" if sum(sizes) else "records"
        by_name: dict[str, list[tuple[int, Check]]] = {}
        for i, report in enumerate(reports):
            for c in report.checks:
                by_name.setdefault(c.name, []).append((i, c))
        merged = []
        for name, seen in by_name.items():
            failing = [(i, c) for i, c in seen if not c.passed]
            if failing:
                i, c = failing[0]
                detail = (
                    f"failed in {len(failing)} of {len(seen)} batches ({total}); first, batch "
                    f"{i + 1} of {sizes[i] or '?'} records: {c.detail}"
                )
            else:
                detail = f"held in all {len(seen)} batches ({total}); batch 1: {seen[0][1].detail}"
            merged.append(Check(name, not failing, detail))
        return cls(merged)

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
    """Check δ (shape, dtype, device, finiteness, budget, band, universality) and side effects.

    The budget allows `BUDGET_TOLERANCE_MV` of float slack; a band limit is judged per lead
    (the worst lead counts) above `band_hz + BAND_MARGIN_HZ`, allowing `BAND_TOLERANCE` of a
    lead's energy there. These are core constants (`ecgarena.contract`), never attack fields.
    """
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
    tol = BUDGET_TOLERANCE_MV
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
        add(band_check(d, eps, threat.band_hz, fs))
    if threat.universal:
        same = d.shape[0] == 1 or bool((d == d[:1]).all())
        add(Check("universal", same, "one δ for all records" if same else "δ differs by record"))
    return report


def band_check(d: torch.Tensor, eps: torch.Tensor, band_hz: float, fs: float) -> Check:
    """The worst lead's energy share above band + margin; leads whose δ is negligible next to
    their budget (RMS below `QUIET_LEAD`·ε, and never above the 1e-5 mV float slack) carry no
    spectrum worth judging."""
    cutoff = band_hz + BAND_MARGIN_HZ
    share = energy_above(d, fs, cutoff, per_lead=True)
    rms = d.pow(2).mean(dim=2).sqrt()
    quiet = torch.clamp(QUIET_LEAD * eps.view(1, -1), min=BUDGET_TOLERANCE_MV)  # ≥ 10 nV
    share = torch.where(rms >= quiet, share, torch.zeros_like(share))
    worst = share.amax(dim=0)
    lead = int(worst.argmax())
    return Check(
        "band limit",
        worst[lead].item() <= BAND_TOLERANCE,
        f"worst lead ({lead}) has {worst[lead].item():.2%} of its energy above {cutoff:g} Hz "
        f"(= {band_hz:g} Hz band + {BAND_MARGIN_HZ:g} Hz margin; allowed {BAND_TOLERANCE:.0%})",
    )
