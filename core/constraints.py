"""Budget projections and spectral measures shared by attacks, defenses and the audit.

Per-lead budgets are tensors broadcast as `(1, leads, 1)`. For ℓ∞ each lead is clipped to its
own ε. For ℓ2 a scalar budget bounds the whole record's norm; a per-lead budget bounds each
lead's norm separately.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from .options import Options
from .specs import ThreatModel


def lead_budget(threat: ThreatModel, n_leads: int, like: torch.Tensor) -> torch.Tensor:
    """The budget as a `(1, leads, 1)` tensor on `like`'s device and dtype."""
    eps = torch.tensor(threat.lead_budgets(n_leads), dtype=like.dtype, device=like.device)
    return eps.view(1, n_leads, 1)


def l2_norms(delta: torch.Tensor, per_lead: bool) -> torch.Tensor:
    """ℓ2 norm per record `(B,1,1)` or per lead `(B,L,1)`."""
    if per_lead:
        return delta.norm(dim=2, keepdim=True)
    return delta.flatten(1).norm(dim=1).view(-1, 1, 1)


def project(delta: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Nearest point of the threat model's ball (a new tensor; `delta` is untouched)."""
    eps = lead_budget(threat, delta.shape[1], delta)
    if threat.norm == "linf":
        return torch.maximum(torch.minimum(delta, eps), -eps)
    per_lead = isinstance(threat.budget_mv, list)
    norms = l2_norms(delta, per_lead)
    bound = eps if per_lead else eps[:, :1]
    return delta * torch.clamp(bound / norms.clamp_min(1e-12), max=1.0)


def rescale_into(delta: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Shrink each lead (ℓ∞) or record (ℓ2) by one factor to fit the budget.

    Unlike clipping this is linear per lead, so a band-limited δ stays band-limited.
    """
    eps = lead_budget(threat, delta.shape[1], delta)
    if threat.norm == "linf":
        peak = delta.abs().amax(dim=2, keepdim=True)
        return delta * torch.clamp(eps / peak.clamp_min(1e-12), max=1.0)
    return project(delta, threat)


def random_in_ball(
    shape: tuple[int, ...], threat: ThreatModel, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A uniform ℓ∞ start, or a random direction scaled to a uniform fraction of the ℓ2 ball."""
    if threat.norm == "linf":
        u = torch.rand(shape, generator=generator, device=device) * 2 - 1
        return u * lead_budget(threat, shape[1], u)
    d = torch.randn(shape, generator=generator, device=device)
    r = torch.rand((shape[0], 1, 1), generator=generator, device=device)
    return project(d * 1e6, threat) * r


def energy_above(
    delta: torch.Tensor, fs: float, cutoff_hz: float, per_lead: bool = False
) -> torch.Tensor:
    """Share of spectral energy strictly above `cutoff_hz`: per record over all leads `(B,)`,
    or per record and lead `(B, L)` with `per_lead`.

    The periodogram uses a Hann window, so the jump between a record's two ends (the FFT sees
    the record as periodic) is not counted as high-frequency energy of a smooth δ.
    """
    d = delta.double()
    window = torch.hann_window(d.shape[-1], periodic=False, dtype=d.dtype, device=d.device)
    spec = torch.fft.rfft(d * window if d.shape[-1] > 2 else d, dim=-1).abs() ** 2
    freqs = torch.fft.rfftfreq(delta.shape[-1], d=1.0 / fs).to(delta.device)
    dims = (2,) if per_lead else (1, 2)
    total = spec.sum(dim=dims)
    high = spec[..., freqs > cutoff_hz].sum(dim=dims)
    return torch.where(total > 0, high / total.clamp_min(1e-300), torch.zeros_like(total))


def bpda_identity(x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """Backward-pass differentiable approximation: forward value f(x), gradient of identity."""
    return x + (fx - x).detach()


PRECORDIAL = ("V2", "V3", "V4", "V5", "V6")


def precordial_profile(eps_mv: float, leads: tuple[str, ...], other_ratio: float) -> list[float]:
    """The SCAR seed's per-lead budgets: ε on V2–V6, ε·`other_ratio` on every other lead.

    With ε = 0.2 mV and ratio 0.5 this is the seed's 0.1 mV (limb leads, V1) / 0.2 mV (V2–V6).
    Data without any of V2–V6 (e.g. one MIT-BIH lead) gets ε on every lead.
    """
    names = [lead.upper() for lead in leads]
    if not any(n in PRECORDIAL for n in names):
        return [eps_mv] * len(leads)
    return [eps_mv if n in PRECORDIAL else eps_mv * other_ratio for n in names]


class PrecordialProfile(Options):
    """Options of attacks whose scalar budget means the SCAR seed's per-lead profile."""

    profile: Literal["seed", "uniform"] = Field(
        "seed", description="seed: ε on V2–V6 and ε·other_ratio elsewhere; uniform: ε everywhere"
    )
    other_ratio: float = Field(0.5, gt=0, le=1, description="limb leads and V1 budget ÷ V2–V6")

    def expand_budget(self, eps_mv: float, leads: tuple[str, ...]) -> float | list[float]:
        """Per-lead budgets from the dataset's lead names (see `precordial_profile`); ε itself
        when every lead would get ε (so an ℓ2 budget keeps its whole-record meaning)."""
        if self.profile == "uniform":
            return eps_mv
        profile = precordial_profile(eps_mv, leads, self.other_ratio)
        return eps_mv if all(b == eps_mv for b in profile) else profile
