"""The core owns the threat model: the run's budget is the contract, an attack may only narrow
it, and the classifier and the core's audit code come back from every attack call unchanged."""

from __future__ import annotations

import pytest
import torch
from ecgarena.attack_call import run_audited
from ecgarena.audit import AuditReport
from ecgarena.contract import build_contract
from ecgarena.errors import PluginError
from ecgarena.integrity import capture, changes, restore
from ecgarena.protocols import AttackContext, DatasetInfo
from ecgarena.specs import ThreatModel
from ecgarena.testing import tiny_classifier
from hypothesis import given, settings
from hypothesis import strategies as st

LEADS = ("I", "II", "V1", "V2")
INFO = DatasetInfo("t", "multiclass", ("a", "b", "c"), LEADS, 100.0, 64)


class Declares:
    """An attack whose declared threat model scales the budget it is given."""

    name = "declares"

    def __init__(self, factor: float = 1.0, profile: list[float] | None = None, **extra) -> None:
        self.factor, self.profile, self.extra = factor, profile, extra

    def threat_model(self, budget_mv):
        scaled = (
            [b * self.factor for b in budget_mv]
            if isinstance(budget_mv, list)
            else budget_mv * self.factor
        )
        return ThreatModel(budget_mv=scaled, **self.extra)

    def run(self, classifier, x, y, threat, ctx):
        eps = torch.tensor(threat.lead_budgets(x.shape[1])).view(1, -1, 1)
        return torch.ones_like(x) * eps


class Profiled(Declares):
    def expand_budget(self, eps_mv, leads):
        return [eps_mv * p for p in self.profile]


budgets = st.floats(0.001, 1.0)


@settings(max_examples=60, deadline=None)
@given(eps=budgets, factor=st.floats(0.1, 3.0))
def test_contract_never_exceeds_the_run_budget(eps, factor):
    contract = build_contract(Declares(factor), eps, LEADS)
    assert all(b <= eps + 1e-12 for b in contract.threat.lead_budgets(len(LEADS)))
    assert bool(contract.problems) == (eps * factor > eps + 1e-5)


@settings(max_examples=60, deadline=None)
@given(eps=budgets, profile=st.lists(st.floats(0.1, 2.0), min_size=4, max_size=4))
def test_a_budget_profile_may_lower_leads_never_raise_them(eps, profile):
    contract = build_contract(Profiled(profile=profile), eps, LEADS)
    got = contract.threat.lead_budgets(len(LEADS))
    assert got == pytest.approx([min(eps * p, eps) for p in profile])
    raised = any(eps * p > eps + 1e-5 for p in profile)
    assert bool(contract.problems) == raised
    if raised:
        assert "expand_budget raised the budget" in contract.problems[0]


def test_a_narrower_declaration_is_kept():
    contract = build_contract(Declares(0.5, band_hz=15.0), 0.1, LEADS)
    assert contract.threat.budget_mv == pytest.approx(0.05) and contract.threat.band_hz == 15.0
    assert not contract.problems


def test_a_threat_model_with_a_tolerance_field_is_a_one_line_plugin_error():
    with pytest.raises(PluginError, match="tolerance_mv: unknown option"):
        build_contract(Declares(tolerance_mv=1.0), 0.1, LEADS)


def _ctx() -> AttackContext:
    return AttackContext(INFO, torch.device("cpu"), torch.Generator().manual_seed(0))


def test_the_wide_attack_is_audited_against_the_run_budget():
    attack = Declares(1.5)
    contract = build_contract(attack, 0.1, LEADS)
    x, y = torch.randn(3, 4, 64), torch.tensor([0, 1, 2])
    done = run_audited(attack, tiny_classifier(4), x, y, contract, _ctx())
    failed = {c.name for c in done.report.checks if not c.passed}
    assert failed == {"threat model"}  # it received the capped contract and stayed inside
    assert "wider than the run's" in done.report.violations[0]


class Negates(Declares):
    def run(self, classifier, x, y, threat, ctx):
        with torch.no_grad():
            for p in classifier.parameters():
                p.neg_()
        return torch.zeros_like(x)


class Replaces(Declares):
    def run(self, classifier, x, y, threat, ctx):
        classifier.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
        return torch.zeros_like(x)


class PatchesTheAudit(Declares):
    def run(self, classifier, x, y, threat, ctx):
        import ecgarena.attack_call as ac
        import ecgarena.audit as au

        ac.audit = lambda *a, **k: AuditReport()
        au.AuditReport.passed = property(lambda self: True)
        return torch.full_like(x, 10.0)


def test_weights_changed_by_an_attack_are_a_violation_and_are_restored():
    clf = tiny_classifier(4)
    state = capture(clf)
    x, y = torch.randn(3, 4, 64), torch.tensor([0, 1, 2])
    done = run_audited(Negates(), clf, x, y, build_contract(Negates(), 0.1, LEADS), _ctx())
    assert not done.report.passed and done.intact
    assert "classifier unchanged" in {c.name for c in done.report.checks if not c.passed}
    assert not changes(clf, state)


def test_replaced_modules_are_a_violation_and_ask_for_a_rebuild():
    clf = tiny_classifier(4)
    x, y = torch.randn(3, 4, 64), torch.tensor([0, 1, 2])
    done = run_audited(Replaces(), clf, x, y, build_contract(Replaces(), 0.1, LEADS), _ctx())
    assert not done.report.passed and not done.intact
    assert not restore(clf, capture(tiny_classifier(4)))


def test_an_attack_that_patches_the_audit_is_caught_in_process():
    attack = PatchesTheAudit()
    x, y = torch.randn(3, 4, 64), torch.tensor([0, 1, 2])
    done = run_audited(attack, tiny_classifier(4), x, y, build_contract(attack, 0.1, LEADS), _ctx())
    failed = {c.name for c in done.report.checks if not c.passed}
    assert {"budget", "core untouched"} <= failed and not done.report.passed
    import ecgarena.attack_call as ac
    from ecgarena.audit import audit

    assert ac.audit is audit  # put back


def test_l2_per_lead_budgets_cannot_widen_a_whole_record_budget():
    wide = build_contract(_PerLead(0.1), 0.1, LEADS)  # √(4·0.1²) = 0.2 > 0.1
    assert wide.problems and wide.threat.budget_mv == pytest.approx(0.1)
    fits = build_contract(_PerLead(0.05), 0.1, LEADS)  # √(4·0.05²) = 0.1: inside the ball
    assert not fits.problems and fits.threat.budget_mv == pytest.approx([0.05] * 4)
    whole = build_contract(Declares(norm="l2"), [0.1, 0.2, 0.2, 0.2], LEADS)
    assert not whole.problems  # a list run budget, declared as the same list
    radius = build_contract(_Whole(0.15), [0.1, 0.2, 0.2, 0.2], LEADS)
    assert radius.problems and radius.threat.budget_mv == pytest.approx(0.1)


class _PerLead(Declares):
    """Declares per-lead ℓ2 budgets of `each` mV whatever it is given."""

    def __init__(self, each: float = 0.1) -> None:
        super().__init__()
        self.each = each

    def threat_model(self, budget_mv):
        return ThreatModel(norm="l2", budget_mv=[self.each] * 4)


class _Whole(_PerLead):
    def threat_model(self, budget_mv):
        return ThreatModel(norm="l2", budget_mv=self.each)
