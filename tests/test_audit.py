"""The core's audit catches each kind of threat-model violation."""

from __future__ import annotations

import math

import torch
from ecgarena.audit import AuditReport, audit, modes
from ecgarena.specs import ThreatModel
from ecgarena.testing import tiny_classifier

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
    threat = ThreatModel(budget_mv=1.0, band_hz=10, band_margin_hz=5)
    t = torch.arange(200) / 100.0
    low = (0.5 * torch.sin(2 * math.pi * 3 * t)).expand(4, 2, 200).contiguous()
    high = (0.5 * torch.sin(2 * math.pi * 30 * t)).expand(4, 2, 200).contiguous()
    assert run_audit(low, threat).passed
    assert failed(run_audit(high, threat)) == {"band limit"}


def test_universality():
    threat = ThreatModel(budget_mv=0.1, universal=True)
    assert run_audit(torch.full((1, 2, 200), 0.05), threat).passed
    varying = torch.zeros_like(X)
    varying[1] = 0.05
    assert failed(run_audit(varying, threat)) == {"universal"}


def test_merge_keeps_worst():
    threat = ThreatModel(budget_mv=0.1)
    ok, bad = run_audit(torch.zeros_like(X), threat), run_audit(torch.ones_like(X), threat)
    merged = AuditReport.merge([ok, bad, ok])
    assert not merged.passed and failed(merged) == {"budget"}
    assert AuditReport.merge([ok, ok]).passed
