"""noise, fgsm and pgd against the core's audit, with hypothesis over budgets and inputs."""

from __future__ import annotations

import pytest
import torch
from ecgarena.gradients import per_sample_loss
from ecgarena.host import Host
from ecgarena.protocols import AttackContext, DatasetInfo
from ecgarena.testing import budgets, check_attack, signals, tiny_classifier
from hypothesis import given, settings
from hypothesis import strategies as st

HOST = Host(builtins=False)
CONFIGS = [
    ("noise", {}),
    ("noise", {"distribution": "sign"}),
    ("noise", {"norm": "l2"}),
    ("fgsm", {}),
    ("fgsm", {"norm": "l2"}),
    ("pgd", {"steps": 3}),
    ("pgd", {"steps": 3, "norm": "l2"}),
    ("pgd", {"steps": 2, "restarts": 2}),
    ("pgd", {"steps": 2, "target": 1}),
]


@pytest.mark.parametrize("name, options", CONFIGS)
@settings(max_examples=200, deadline=None)
@given(x=signals(batch=3, leads=2, time=40), budget=budgets(2, max_mv=0.5))
def test_attack_passes_audit_for_any_budget(name, options, x, budget):
    attack = HOST.create("attacks", name, options)
    report = check_attack(attack, x, budget)
    assert report.passed, report.violations


@pytest.mark.parametrize("name, options", CONFIGS)
def test_zero_budget_gives_zero_perturbation(name, options):
    attack = HOST.create("attacks", name, options)
    clf, x = tiny_classifier(), torch.randn(4, 2, 40)
    delta = attack.run(clf, x, torch.zeros(4, dtype=torch.long), attack.threat_model(0.0), _ctx())
    assert torch.count_nonzero(delta) == 0


def _ctx(task="multiclass", seed=0):
    info = DatasetInfo("t", task, ("a", "b", "c"), ("L0", "L1"), 100.0, 40)
    return AttackContext(info, torch.device("cpu"), torch.Generator().manual_seed(seed))


def test_fgsm_moves_every_coordinate_by_exactly_eps():
    clf, x, y = tiny_classifier(), torch.randn(4, 2, 40), torch.tensor([0, 1, 2, 0])
    attack = HOST.create("attacks", "fgsm")
    delta = attack.run(clf, x, y, attack.threat_model([0.05, 0.1]), _ctx())
    assert torch.allclose(delta[:, 0].abs(), torch.tensor(0.05))
    assert torch.allclose(delta[:, 1].abs(), torch.tensor(0.1))


def test_pgd_is_deterministic_and_stronger_than_noise():
    clf, x, y = tiny_classifier(seed=3), torch.randn(16, 2, 40), torch.randint(0, 3, (16,))
    pgd, noise = HOST.create("attacks", "pgd", {"steps": 10}), HOST.create("attacks", "noise")
    threat = pgd.threat_model(0.3)
    d1, d2 = pgd.run(clf, x, y, threat, _ctx(seed=5)), pgd.run(clf, x, y, threat, _ctx(seed=5))
    assert torch.equal(d1, d2)
    dn = noise.run(clf, x, y, threat, _ctx())
    with torch.no_grad():
        base = per_sample_loss(clf(x), y, "multiclass").mean()
        l_pgd = per_sample_loss(clf(x + d1), y, "multiclass").mean()
        l_noise = per_sample_loss(clf(x + dn), y, "multiclass").mean()
    assert l_pgd > l_noise and l_pgd > base


def test_targeted_pgd_lowers_target_loss():
    clf, x, y = tiny_classifier(seed=1), torch.randn(16, 2, 40), torch.zeros(16, dtype=torch.long)
    attack = HOST.create("attacks", "pgd", {"steps": 10, "target": 2})
    delta = attack.run(clf, x, y, attack.threat_model(0.5), _ctx())
    target = torch.full_like(y, 2)
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(clf(x), target)
        after = torch.nn.functional.cross_entropy(clf(x + delta), target)
    assert after < before


def test_multilabel_pgd_raises_bce():
    clf, x = tiny_classifier(seed=2), torch.randn(8, 2, 40)
    y = torch.randint(0, 2, (8, 3)).float()
    attack = HOST.create("attacks", "pgd", {"steps": 5})
    delta = attack.run(clf, x, y, attack.threat_model(0.3), _ctx("multilabel"))
    with torch.no_grad():
        assert (
            per_sample_loss(clf(x + delta), y, "multilabel").mean()
            > per_sample_loss(clf(x), y, "multilabel").mean()
        )


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 1000))
def test_attacks_leave_train_mode_as_found(seed):
    clf = tiny_classifier(seed=seed % 7).train()
    attack = HOST.create("attacks", "pgd", {"steps": 1})
    x = torch.randn(2, 2, 40)
    attack.run(clf, x, torch.zeros(2, dtype=torch.long), attack.threat_model(0.1), _ctx())
    assert all(m.training for m in clf.modules())
