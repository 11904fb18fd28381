"""noise, fgsm, pgd, mi-fgsm and cw-l2 against the core's audit, with hypothesis over budgets
and inputs."""

from __future__ import annotations

import pytest
import torch
from ecgarena import AttackContext, Classifier, DatasetInfo, Host, margin, per_sample_loss
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
    ("mi-fgsm", {"steps": 3}),
    ("mi-fgsm", {"steps": 2, "norm": "l2"}),
    ("cw-l2", {"steps": 3, "search_steps": 2}),
]


@pytest.mark.parametrize("name, options", CONFIGS)
@settings(max_examples=200, deadline=None)
@given(x=signals(batch=3, leads=2, time=40), budget=budgets(2, max_mv=0.5))
def test_attack_passes_audit_for_any_budget(name, options, x, budget):
    attack = HOST.create("attacks", name, options)
    audit = check_attack(attack, x, budget).audit
    assert audit.passed, audit.violations


@pytest.mark.parametrize("name, options", CONFIGS)
def test_zero_budget_gives_zero_perturbation(name, options):
    attack = HOST.create("attacks", name, options)
    delta = check_attack(
        attack, torch.randn(4, 2, 40), 0.0, y=torch.zeros(4, dtype=torch.long)
    ).delta
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


def test_mi_fgsm_with_one_step_and_no_momentum_is_fgsm():
    clf, x, y = tiny_classifier(seed=4), torch.randn(6, 2, 40), torch.randint(0, 3, (6,))
    mi, fgsm = HOST.create("attacks", "mi-fgsm", {"steps": 1}), HOST.create("attacks", "fgsm")
    threat = mi.threat_model([0.05, 0.1])
    assert torch.allclose(mi.run(clf, x, y, threat, _ctx()), fgsm.run(clf, x, y, threat, _ctx()))


def test_mi_fgsm_is_deterministic_and_raises_the_loss():
    clf, x, y = tiny_classifier(seed=5), torch.randn(16, 2, 40), torch.randint(0, 3, (16,))
    attack = HOST.create("attacks", "mi-fgsm", {"steps": 5, "decay": 1.0})
    threat = attack.threat_model(0.3)
    d1, d2 = attack.run(clf, x, y, threat, _ctx()), attack.run(clf, x, y, threat, _ctx())
    assert torch.equal(d1, d2) and d1.abs().max() <= 0.3 + 1e-6
    with torch.no_grad():
        assert (
            per_sample_loss(clf(x + d1), y, "multiclass").mean()
            > per_sample_loss(clf(x), y, "multiclass").mean()
        )


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["multiclass", "multilabel"]))
def test_margin_is_negative_exactly_when_the_prediction_is_wrong(seed, task):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(8, 4, generator=g)
    if task == "multiclass":
        y = torch.randint(0, 4, (8,), generator=g)
        wrong = logits.argmax(1) != y
    else:
        y = torch.randint(0, 2, (8, 4), generator=g).float()
        wrong = ((logits > 0).float() != y).any(1)
    assert torch.equal(margin(logits, y, task) < 0, wrong)


def linear_classifier(seed: int = 0) -> Classifier:
    """A random linear classifier: its margins move fast enough for C&W's few steps."""
    torch.manual_seed(seed)
    return Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(80, 3))).eval()


def test_cw_l2_finds_small_adversarials_within_budget():
    clf, x = linear_classifier(), torch.randn(12, 2, 40)
    with torch.no_grad():
        y = clf(x).argmax(1)  # every record starts correctly classified
    attack = HOST.create("attacks", "cw-l2", {"steps": 60, "search_steps": 4, "lr_mv": 0.05})
    threat = attack.threat_model(5.0)
    delta, report = attack.run(clf, x, y, threat, _ctx())
    assert (delta.flatten(1).norm(dim=1) <= 5.0 + 1e-5).all()
    with torch.no_grad():
        fooled = clf(x + delta).argmax(1) != y
    assert fooled.float().mean() >= 0.9
    assert all(p.grad is None for p in clf.parameters())  # the model is left untouched
    assert report["records"] == 12 and report["found_adversarial"] >= 11
    # the minimal δ is far smaller than the budget: C&W minimises the norm, PGD does not
    assert report["median_min_l2_mv"] < 0.5 * 5.0


def test_cw_l2_unfooled_records_stay_within_a_tiny_budget():
    clf, x = tiny_classifier(seed=6), torch.randn(6, 2, 40)
    with torch.no_grad():
        y = clf(x).argmax(1)
    attack = HOST.create("attacks", "cw-l2", {"steps": 5, "search_steps": 1})
    delta = attack.run(clf, x, y, attack.threat_model(1e-3), _ctx()).delta
    assert (delta.flatten(1).norm(dim=1) <= 1e-3 + 1e-6).all()


def test_cw_l2_report_counts_only_records_correct_when_clean():
    """Records already misclassified when clean are 'found' at 0 mV: they must not count
    towards `found_adversarial` or `median_min_l2_mv` (the report says how many counted)."""
    clf, x = linear_classifier(), torch.randn(12, 2, 40)
    with torch.no_grad():
        pred = clf(x).argmax(1)
    y = pred.clone()
    y[:5] = (pred[:5] + 1) % 3  # five records misclassified when clean
    attack = HOST.create("attacks", "cw-l2", {"steps": 60, "search_steps": 4, "lr_mv": 0.05})
    delta, report = attack.run(clf, x, y, attack.threat_model(5.0), _ctx())
    assert torch.count_nonzero(delta[:5]) == 0  # already adversarial: δ = 0, not counted
    assert report["records"] == 12
    assert report["counted_records"] == 7 and report["misclassified_clean"] == 5
    assert 6 <= report["found_adversarial"] <= 7
    assert report["median_min_l2_mv"] > 0.0  # the zeros of the misclassified are left out
    # the same records alone give the same statistics
    alone = HOST.create("attacks", "cw-l2", {"steps": 60, "search_steps": 4, "lr_mv": 0.05})
    alone_report = alone.run(clf, x[5:], y[5:], alone.threat_model(5.0), _ctx()).report
    for key in ("found_adversarial", "median_min_l2_mv"):
        assert alone_report[key] == pytest.approx(report[key], rel=1e-4), key


def test_cw_l2_report_with_every_record_misclassified_counts_none():
    clf, x = linear_classifier(1), torch.randn(4, 2, 40)
    with torch.no_grad():
        y = (clf(x).argmax(1) + 1) % 3
    attack = HOST.create("attacks", "cw-l2", {"steps": 3, "search_steps": 1})
    report = attack.run(clf, x, y, attack.threat_model(1.0), _ctx()).report
    assert report["counted_records"] == 0 and report["found_adversarial"] == 0
    assert report["median_min_l2_mv"] != report["median_min_l2_mv"]  # NaN: nothing counted


def test_cw_l2_merged_report_is_the_median_over_all_batches():
    """The engine calls the attack per batch; the merged median is over every counted record
    of every batch (not a median of medians), and the counts add up."""
    clf, x = linear_classifier(), torch.randn(12, 2, 40)
    with torch.no_grad():
        y = clf(x).argmax(1)
    y[:3] = (y[:3] + 1) % 3
    attack = HOST.create("attacks", "cw-l2", {"steps": 30, "search_steps": 2, "lr_mv": 0.05})
    threat = attack.threat_model(5.0)
    parts = [
        attack.run(clf, x[s], y[s], threat, _ctx()).report for s in (slice(0, 5), slice(5, 12))
    ]
    merged = type(attack).merge_reports(parts)
    norms = sorted(parts[0]["min_l2_mv"] + parts[1]["min_l2_mv"])
    assert merged["records"] == 12 and merged["counted_records"] == 9
    assert merged["misclassified_clean"] == 3 and merged["found_adversarial"] == len(norms)
    assert merged["median_min_l2_mv"] == norms[len(norms) // 2]
