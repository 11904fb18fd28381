"""Property tests of the budget projections and the spectral measure (≥200 examples each)."""

from __future__ import annotations

import math

import numpy as np
import torch
from ecgarena.constraints import energy_above, project, random_in_ball, rescale_into
from ecgarena.specs import ThreatModel
from ecgarena.testing import budgets, signals
from hypothesis import given, settings
from hypothesis import strategies as st

LEADS = 3
threats = st.builds(ThreatModel, norm=st.sampled_from(["linf", "l2"]), budget_mv=budgets(LEADS))
deltas = signals(batch=4, leads=LEADS, time=50).map(lambda t: t * 3)


def within(delta: torch.Tensor, threat: ThreatModel, tol: float = 1e-5) -> bool:
    eps = torch.tensor(threat.lead_budgets(LEADS)).view(1, -1, 1)
    if threat.norm == "linf":
        return bool((delta.abs() <= eps + tol).all())
    if isinstance(threat.budget_mv, list):
        return bool((delta.norm(dim=2, keepdim=True) <= eps + tol).all())
    return bool((delta.flatten(1).norm(dim=1) <= threat.budget_mv + tol).all())


@settings(max_examples=250)
@given(deltas, threats)
def test_projection_lands_in_budget_and_is_idempotent(delta, threat):
    before = delta.clone()
    p = project(delta, threat)
    assert torch.equal(delta, before)  # no in-place change
    assert p.shape == delta.shape and p.dtype == delta.dtype
    assert within(p, threat)
    assert torch.allclose(project(p, threat), p, atol=1e-6)


@settings(max_examples=250)
@given(deltas, threats)
def test_projection_keeps_points_already_inside(delta, threat):
    inside = rescale_into(delta, threat) * 0.999
    assert within(inside, threat)
    assert torch.allclose(project(inside, threat), inside, atol=1e-6)


@settings(max_examples=250)
@given(deltas, threats)
def test_rescale_is_within_budget_and_proportional_per_lead(delta, threat):
    r = rescale_into(delta, threat)
    assert within(r, threat)
    if threat.norm == "linf":
        # one factor per lead: the shape of each lead is kept exactly (band limit preserved)
        ratio = r / torch.where(delta == 0, torch.ones_like(delta), delta)
        nz = delta.abs() > 1e-6
        for b in range(delta.shape[0]):
            for lead in range(LEADS):
                vals = ratio[b, lead][nz[b, lead]]
                if vals.numel():
                    assert torch.allclose(vals, vals[0].expand_as(vals), atol=1e-4)


@settings(max_examples=200)
@given(threats, st.integers(0, 10_000))
def test_random_start_is_inside(threat, seed):
    g = torch.Generator().manual_seed(seed)
    d = random_in_ball((4, LEADS, 50), threat, g, torch.device("cpu"))
    assert within(d, threat)


def test_energy_above_cutoff_of_pure_tones():
    fs, t = 100.0, torch.arange(1000) / 100.0
    low = torch.sin(2 * math.pi * 5 * t).view(1, 1, -1)
    high = torch.sin(2 * math.pi * 30 * t).view(1, 1, -1)
    assert energy_above(low, fs, 15).item() < 1e-6
    assert energy_above(high, fs, 15).item() > 0.999
    mix = energy_above(low + high, fs, 15).item()
    assert abs(mix - 0.5) < 1e-3
    assert energy_above(torch.zeros(1, 1, 100), fs, 15).item() == 0.0


def test_clipping_reintroduces_harmonics_but_rescaling_does_not():
    """METHODS.md §3: elementwise clipping of a band-limited δ adds high-frequency energy."""
    fs, t = 500.0, torch.arange(5000) / 500.0
    v = torch.sin(2 * math.pi * 2 * t).view(1, 1, -1).double()
    threat = ThreatModel(budget_mv=0.2)
    clipped, rescaled = project(v, threat), rescale_into(v, threat)
    assert energy_above(clipped, fs, 10).item() > 1e-4
    assert energy_above(rescaled, fs, 10).item() < 1e-9
    assert np.isclose(rescaled.abs().max().item(), 0.2)
