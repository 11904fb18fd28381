"""The core's audit catches each kind of threat-model violation."""

from __future__ import annotations

import math

import pytest
import torch
from ecgarena.audit import AuditReport, audit, modes
from ecgarena.constraints import energy_above
from ecgarena.contract import BAND_TOLERANCE
from ecgarena.specs import ThreatModel
from ecgarena.testing import tiny_classifier
from pydantic import ValidationError

X = torch.randn(4, 2, 200)


def run_audit(delta, threat, x=X, x_before=None, mb=None, ma=None):
    return audit(
        x, X.clone() if x_before is None else x_before, delta, threat, 100.0, mb or [], ma or []
    )


def failed(report: AuditReport) -> set[str]:
    return {c.name for c in report.checks if not c.passed}


def test_clean_perturbation_passes():
    threat = ThreatModel(budget_mv=0.1)
    assert run_audit(torch.full_like(X, 0.1), threat).passed


def test_budget_overstep_is_flagged_per_lead():
    threat = ThreatModel(budget_mv=[0.1, 0.2])
    d = torch.zeros_like(X)
    d[:, 1] = 0.2
    assert run_audit(d, threat).passed
    d[:, 0] = 0.2  # lead 0 only allows 0.1 mV
    assert failed(run_audit(d, threat)) == {"budget"}


def test_l2_budget():
    threat = ThreatModel(norm="l2", budget_mv=1.0)
    d = torch.zeros_like(X)
    d[:, 0, 0] = 1.0
    assert run_audit(d, threat).passed
    d[:, 1, 0] = 0.5
    assert failed(run_audit(d, threat)) == {"budget"}


def test_shape_dtype_nan_and_in_place():
    threat = ThreatModel(budget_mv=0.1)
    assert "shape" in failed(run_audit(torch.zeros(4, 2, 199), threat))
    assert "dtype/device" in failed(run_audit(torch.zeros_like(X, dtype=torch.float64), threat))
    nan = torch.zeros_like(X)
    nan[0, 0, 0] = float("nan")
    assert "finite" in failed(run_audit(nan, threat))
    modified = X.clone()
    modified[0, 0, 0] += 1
    assert "input unchanged" in failed(run_audit(torch.zeros_like(X), threat, x=modified))


def test_model_mode_change_is_flagged():
    clf = tiny_classifier()
    before = modes(clf)
    clf.train()
    report = run_audit(torch.zeros_like(X), ThreatModel(budget_mv=0.1), mb=before, ma=modes(clf))
    assert failed(report) == {"model mode restored"}


def test_band_limit_check():
    threat = ThreatModel(budget_mv=1.0, band_hz=10)  # judged above 10 + BAND_MARGIN_HZ = 20 Hz
    t = torch.arange(200) / 100.0
    low = (0.5 * torch.sin(2 * math.pi * 3 * t)).expand(4, 2, 200).contiguous()
    high = (0.5 * torch.sin(2 * math.pi * 30 * t)).expand(4, 2, 200).contiguous()
    assert run_audit(low, threat).passed
    assert failed(run_audit(high, threat)) == {"band limit"}


def test_band_limit_is_judged_per_lead():
    """A 40 Hz tone on one lead at 0.4 ε hides in the pooled share when the other leads carry
    large low-frequency energy; the worst lead counts."""
    x = torch.randn(4, 12, 1000)
    t = torch.arange(1000) / 100.0
    d = (0.5 * torch.sin(2 * math.pi * 2 * t)).expand(4, 12, 1000).clone()
    d[:, 3] = 0.2 * torch.sin(2 * math.pi * 40 * t)
    threat = ThreatModel(budget_mv=0.5, band_hz=15)
    pooled = energy_above(d, 100.0, 25.0).max().item()
    assert pooled < BAND_TOLERANCE  # what a pooled check would have let through
    report = audit(x, x.clone(), d, threat, 100.0, [], [])
    assert failed(report) == {"band limit"}
    assert "worst lead (3)" in next(c.detail for c in report.checks if c.name == "band limit")


def test_a_negligible_lead_has_no_band_to_judge():
    t = torch.arange(1000) / 100.0
    d = (0.2 * torch.sin(2 * math.pi * 2 * t)).expand(2, 2, 1000).clone()
    d[:, 1] = 1e-9 * torch.sin(2 * math.pi * 45 * t)  # float dust, far below QUIET_LEAD·ε
    x = torch.zeros(2, 2, 1000)
    assert audit(x, x.clone(), d, ThreatModel(budget_mv=0.2, band_hz=15), 100.0, [], []).passed


def test_tolerances_are_not_threat_model_fields():
    for field in ("tolerance_mv", "band_tolerance", "band_margin_hz"):
        with pytest.raises(ValidationError, match="Extra inputs"):
            ThreatModel(budget_mv=0.1, **{field: 1.0})


def test_universality():
    threat = ThreatModel(budget_mv=0.1, universal=True)
    assert run_audit(torch.full((1, 2, 200), 0.05), threat).passed
    varying = torch.zeros_like(X)
    varying[1] = 0.05
    assert failed(run_audit(varying, threat)) == {"universal"}


def test_merge_keeps_worst():
    threat = ThreatModel(budget_mv=0.1)
    ok, bad = run_audit(torch.zeros_like(X), threat), run_audit(torch.ones_like(X), threat)
    merged = AuditReport.merge([ok, bad, ok], [128, 128, 44])
    assert not merged.passed and failed(merged) == {"budget"}
    budget = next(c.detail for c in merged.checks if c.name == "budget")
    assert budget.startswith(
        "failed in 1 of 3 batches (300 records); first, batch 2 of 128 records"
    )
    both = AuditReport.merge([ok, ok], [128, 72])
    assert both.passed and all(
        "held in all 2 batches (200 records)" in c.detail for c in both.checks
    )
