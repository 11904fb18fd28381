"""apgd-ce, apgd-dlr, square and auto: the core's audit, the invariants, strength against PGD,
the DLR loss, gradient-free Square and the gradient-masking check of `auto`."""

from __future__ import annotations

import pytest
import torch
from ecgarena import AttackContext, Classifier, DatasetInfo, Host, UserError, margin, pgd
from ecgarena.testing import budgets, check_attack, signals, tiny_classifier
from ecgarena_autoattack import checkpoints, dlr_loss, dlr_targeted_loss, p_schedule
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

HOST = Host(builtins=False)
NAMES = ("apgd-ce", "apgd-dlr", "square", "auto")
CONFIGS = [
    ("apgd-ce", {"steps": 4}, 3),
    ("apgd-ce", {"steps": 3, "norm": "l2", "restarts": 2}, 3),
    ("apgd-dlr", {"steps": 4}, 3),
    ("apgd-dlr", {"steps": 3, "norm": "l2"}, 3),
    ("apgd-dlr", {"steps": 3, "targeted": True, "n_target_classes": 2}, 5),
    ("square", {"n_queries": 25}, 3),
    ("square", {"n_queries": 25, "norm": "l2"}, 3),
    ("auto", {"steps": 3, "n_queries": 20}, 3),
    ("auto", {"steps": 3, "n_queries": 20, "norm": "l2"}, 5),
]
MULTILABEL = [(n, o, k) for n, o, k in CONFIGS if not o.get("targeted")]
BUDGETS = [0.3, [0.05, 0.4], 0.0, [0.0, 0.2]]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: at these tensor sizes thread synchronisation, not arithmetic,
    dominates (several times slower on a busy 2-core machine); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ctx(task="multiclass", k=3, seed=0, leads=2, time=40) -> AttackContext:
    info = DatasetInfo(
        "t",
        task,
        tuple(f"c{i}" for i in range(k)),
        tuple(f"L{i}" for i in range(leads)),
        100.0,
        time,
    )
    return AttackContext(info, torch.device("cpu"), torch.Generator().manual_seed(seed))


def _labels(clf, x, task="multiclass"):
    """Labels the classifier gets right on every record."""
    with torch.no_grad():
        logits = clf(x)
    return (logits > 0).float() if task == "multilabel" else logits.argmax(1)


def _fooled(clf, x, delta, y, task="multiclass"):
    with torch.no_grad():
        return margin(clf(x + delta), y, task) < 0


# -- registration and options -----------------------------------------------------------------


def test_all_four_are_registered_with_described_options():
    for name in NAMES:
        cls = HOST.entries["attacks"][name].cls
        assert cls.name == name
        for field, info in cls.model_fields.items():
            assert info.description, f"{name}.{field} has no description"
    assert HOST.entries["attacks"]["apgd-ce"].cls.stronger_than == ("noise", "fgsm")
    auto = HOST.entries["attacks"]["auto"].cls.stronger_than
    assert set(auto) == {"noise", "fgsm", "pgd", "apgd-ce", "apgd-dlr", "square"}
    with pytest.raises(UserError):
        HOST.create("attacks", "apgd-ce", {"stepz": 3})
    assert HOST.create("attacks", "apgd-dlr", {"targeted": True}).threat_model(0.1).targeted


# -- the core's audit ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, options, k", CONFIGS)
@pytest.mark.parametrize("budget", BUDGETS)
def test_passes_the_audit_for_scalar_and_per_lead_budgets(name, options, k, budget):
    attack = HOST.create("attacks", name, options)
    audit = check_attack(attack, torch.randn(4, 2, 40), budget, n_classes=k).audit
    assert audit.passed, audit.violations


@pytest.mark.parametrize("name, options, k", MULTILABEL)
@pytest.mark.parametrize("budget", [0.3, [0.05, 0.4]])
def test_passes_the_audit_on_multilabel_tasks(name, options, k, budget):
    attack = HOST.create("attacks", name, options)
    audit = check_attack(
        attack, torch.randn(4, 2, 40), budget, task="multilabel", n_classes=k
    ).audit
    assert audit.passed, audit.violations


@pytest.mark.parametrize("name, options, k", CONFIGS)
@settings(max_examples=8, deadline=None)
@given(x=signals(batch=3, leads=2, time=40), budget=budgets(2, max_mv=0.5))
def test_audit_holds_for_any_budget_and_signal(name, options, k, x, budget):
    audit = check_attack(HOST.create("attacks", name, options), x, budget, n_classes=k).audit
    assert audit.passed, audit.violations


# -- invariants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options, k", [c for c in CONFIGS if c[1].get("norm") != "l2"])
@settings(max_examples=6, deadline=None)
@given(
    x=signals(batch=3, leads=2, time=40), eps=st.lists(st.floats(0, 0.5), min_size=2, max_size=2)
)
def test_linf_stays_inside_each_leads_budget(name, options, k, x, eps):
    attack = HOST.create("attacks", name, options)
    clf = tiny_classifier(n_classes=k)
    delta = attack.run(clf, x, _labels(clf, x), attack.threat_model(eps), _ctx(k=k)).delta
    assert delta.shape == x.shape and delta.dtype == x.dtype
    for lead, e in enumerate(eps):
        assert delta[:, lead].abs().max() <= e + 1e-6


@pytest.mark.parametrize("name, options, k", CONFIGS)
def test_zero_budget_gives_zero_perturbation(name, options, k):
    attack = HOST.create("attacks", name, options)
    clf, x = tiny_classifier(n_classes=k), torch.randn(4, 2, 40)
    delta = attack.run(clf, x, _labels(clf, x), attack.threat_model(0.0), _ctx(k=k)).delta
    assert torch.count_nonzero(delta) == 0


@pytest.mark.parametrize("name, options, k", CONFIGS)
@settings(max_examples=3, deadline=None)
@given(x=signals(batch=3, leads=2, time=40), seed=st.integers(0, 1000))
def test_deterministic_with_a_fixed_seed_and_side_effect_free(name, options, k, x, seed):
    clf = tiny_classifier(n_classes=k, seed=seed % 5).train()
    state = {n: t.clone() for n, t in clf.state_dict().items()}
    x_before, y = x.clone(), torch.randint(0, k, (3,))
    threat = HOST.create("attacks", name, options).threat_model([0.2, 0.3])
    runs = [
        HOST.create("attacks", name, options).run(clf, x, y, threat, _ctx(k=k, seed=seed))
        for _ in range(2)
    ]
    assert torch.equal(runs[0].delta, runs[1].delta) and runs[0].report == runs[1].report
    assert torch.equal(x, x_before)
    assert all(m.training for m in clf.modules())  # train mode left as found
    assert all(p.grad is None for p in clf.parameters())
    assert all(torch.equal(state[n], t) for n, t in clf.state_dict().items())


# -- APGD ---------------------------------------------------------------------------------------


def test_checkpoints_follow_the_paper():
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]  # ⌈p_j·N⌉ of the paper
    assert checkpoints(25) == [5, 9, 12, 14, *range(15, 26)]  # whole-iteration periods
    assert checkpoints(1) == [1]
    assert all(0 < w <= 7 for w in checkpoints(7)) and checkpoints(7) == sorted(set(checkpoints(7)))


def _separable(n: int, k: int, seed: int, t: int = 40):
    """k classes, each a sinusoid pair at its own frequency on two leads, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    tt = torch.arange(t).float() / t
    freq = torch.arange(1, k + 1).float().view(k, 1, 1)
    templates = torch.cat(
        [torch.sin(2 * torch.pi * freq * tt), torch.cos(2 * torch.pi * freq * tt)], dim=1
    )
    return 0.5 * templates[y] + 0.3 * torch.randn(n, 2, t, generator=g), y


@pytest.fixture(scope="module")
def trained():
    """A small conv net trained for a few epochs on separable synthetic 4-class data."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv1d(2, 8, 5, padding=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(4),
        nn.Flatten(),
        nn.Linear(32, 4),
    )
    clf = Classifier(net)
    x, y = _separable(256, 4, 0)
    opt = torch.optim.Adam(clf.parameters(), 1e-2)
    for _ in range(25):
        for i in range(0, 256, 64):
            loss = nn.functional.cross_entropy(clf(x[i : i + 64]), y[i : i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    clf.eval()
    x_test, y_test = _separable(96, 4, 1)
    with torch.no_grad():
        assert (clf(x_test).argmax(1) == y_test).float().mean() > 0.9
    return clf, x_test, y_test


def test_apgd_ce_is_at_least_as_strong_as_pgd_10(trained):
    clf, x, y = trained
    attack = HOST.create("attacks", "apgd-ce", {"steps": 10})
    ctx, reports = _ctx(k=4), []
    for eps in (0.1, 0.2):
        threat = attack.threat_model(eps)
        d_pgd = pgd(clf, x, y, threat, "multiclass", steps=10, generator=ctx.generator)
        out = attack.run(clf, x, y, threat, ctx)
        reports.append(out.report)
        d_apgd = out.delta
        n_pgd = int(_fooled(clf, x, d_pgd, y).sum())
        n_apgd = int(_fooled(clf, x, d_apgd, y).sum())
        assert n_apgd >= n_pgd
    assert n_pgd > 0  # the budget is large enough to matter
    merged = type(attack).merge_reports(reports)
    assert merged["records"] == 2 * len(x)
    assert merged["misclassified"] == sum(r["misclassified"] for r in reports)
    assert merged["step_halvings"] == sum(r["step_halvings"] for r in reports)


def test_apgd_dlr_targeted_breaks_the_trained_model(trained):
    clf, x, y = trained
    attack = HOST.create("attacks", "apgd-dlr", {"steps": 10, "targeted": True})
    out = attack.run(clf, x, y, attack.threat_model(0.2), _ctx(k=4))
    assert _fooled(clf, x, out.delta, y).float().mean() > 0.2
    assert out.report["loss"] == "dlr_targeted (3 targets)"  # capped at K − 1


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100), shift=st.floats(-5, 5))
def test_dlr_is_invariant_to_rescaling_and_shifting_the_logits(seed, scale, shift):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y, t = torch.randint(0, 5, (8,), generator=g), torch.randint(0, 5, (8,), generator=g)
    assert torch.allclose(dlr_loss(z * scale + shift, y), dlr_loss(z, y), atol=1e-6)
    assert torch.allclose(
        dlr_targeted_loss(z * scale + shift, y, t), dlr_targeted_loss(z, y, t), atol=1e-6
    )


def test_dlr_is_positive_exactly_when_misclassified():
    z = torch.tensor([[3.0, 1.0, 0.0], [1.0, 3.0, 0.0]])
    y = torch.tensor([0, 0])
    loss = dlr_loss(z, y)
    assert loss[0] < 0 < loss[1]
    assert torch.allclose(loss, torch.tensor([-2.0 / 3.0, 2.0 / 3.0]))


def test_dlr_refuses_too_few_classes_with_a_clear_error():
    clf, x = tiny_classifier(n_classes=3), torch.randn(2, 2, 40)
    targeted = HOST.create("attacks", "apgd-dlr", {"targeted": True, "steps": 2})
    with pytest.raises(UserError, match="at least 4 classes.*has 3"):
        targeted.run(clf, x, torch.zeros(2).long(), targeted.threat_model(0.1), _ctx(k=3))
    plain = HOST.create("attacks", "apgd-dlr", {"steps": 2})
    clf2 = tiny_classifier(n_classes=2)
    with pytest.raises(UserError, match="at least 3 classes.*has 2"):
        plain.run(clf2, x, torch.zeros(2).long(), plain.threat_model(0.1), _ctx(k=2))
    with pytest.raises(UserError, match="multiclass only"):
        y = torch.ones(2, 3)
        targeted.run(clf, x, y, targeted.threat_model(0.1), _ctx("multilabel", k=3))


# -- Square -------------------------------------------------------------------------------------


class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("this classifier has no gradient")


class NoGradientNet(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(_NoBackward.apply(x))


class MaskedNet(nn.Module):
    """Exact logits forward, exactly zero input gradient (the classic masking)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        out = self.inner(x)
        return out.detach() + 0 * out


def _linear(seed: int = 0, wrap=None, k: int = 3) -> Classifier:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(80, k))
    return Classifier(wrap(net) if wrap else net).eval()


def test_square_is_gradient_free():
    clf, x = _linear(wrap=NoGradientNet), torch.randn(24, 2, 40)
    y = _labels(clf, x)
    with pytest.raises(RuntimeError, match="no gradient"):
        HOST.create("attacks", "apgd-ce", {"steps": 1}).run(
            clf, x, y, HOST.create("attacks", "apgd-ce").threat_model(0.1), _ctx()
        )
    attack = HOST.create("attacks", "square", {"n_queries": 150})
    delta, report = attack.run(clf, x, y, attack.threat_model(0.15), _ctx())
    assert _fooled(clf, x, delta, y).float().mean() > 0.5
    assert report["records"] == 24 and report["queries_mean"] <= 150
    assert report["queries_median"] is not None


def test_square_breaks_a_gradient_masked_model_that_apgd_cannot():
    clf, x = _linear(wrap=MaskedNet), torch.randn(32, 2, 40)
    y = _labels(clf, x)
    apgd_ce = HOST.create("attacks", "apgd-ce", {"steps": 10})
    sq = HOST.create("attacks", "square", {"n_queries": 200})
    threat = sq.threat_model(0.15)
    fooled_apgd = _fooled(clf, x, apgd_ce.run(clf, x, y, threat, _ctx()).delta, y).float().mean()
    fooled_sq = _fooled(clf, x, sq.run(clf, x, y, threat, _ctx()).delta, y).float().mean()
    assert fooled_sq > 0.6 and fooled_sq > fooled_apgd + 0.4


def test_square_stops_querying_broken_records_and_lowers_the_margin():
    clf, x = _linear(seed=2), torch.randn(16, 2, 40)
    y = _labels(clf, x)
    attack = HOST.create("attacks", "square", {"n_queries": 60})
    delta, report = attack.run(clf, x, y, attack.threat_model(0.1), _ctx())
    fooled = _fooled(clf, x, delta, y)
    queries = torch.tensor(report["queries"])
    assert (queries[~fooled] == 60).all() and (queries <= 60).all()
    with torch.no_grad():
        assert (margin(clf(x + delta), y, "multiclass") <= margin(clf(x), y, "multiclass")).all()


@pytest.mark.parametrize("budget", [0.8, [0.3, 0.6]])
def test_square_l2_stays_on_the_sphere(budget):
    clf, x = _linear(seed=3), torch.randn(8, 2, 40)
    attack = HOST.create("attacks", "square", {"n_queries": 40, "norm": "l2"})
    delta = attack.run(clf, x, _labels(clf, x), attack.threat_model(budget), _ctx()).delta
    if isinstance(budget, list):
        assert torch.allclose(delta.norm(dim=2), torch.tensor(budget).expand(8, 2), atol=1e-4)
    else:
        assert torch.allclose(delta.flatten(1).norm(dim=1), torch.tensor(budget), atol=1e-4)


def test_p_schedule_halves_on_the_rescaled_iterations():
    assert p_schedule(0.8, 0, 10_000) == 0.8 and p_schedule(0.8, 10, 10_000) == 0.8
    assert p_schedule(0.8, 11, 10_000) == 0.4 and p_schedule(0.8, 8001, 10_000) == 0.8 / 512
    assert p_schedule(0.8, 2, 1000) == 0.4  # iteration 2 of 1000 ≙ 20 of 10 000


# -- auto ---------------------------------------------------------------------------------------


def _auto(**options):
    return HOST.create("attacks", "auto", {"steps": 10, "n_queries": 200, **options})


def test_auto_attributes_each_broken_record_to_one_attack():
    clf, x = _linear(seed=1), torch.randn(40, 2, 40)
    y = _labels(clf, x)
    y[:4] = (y[:4] + 1) % 3  # four records misclassified clean
    attack = _auto()
    delta, report = attack.run(clf, x, y, attack.threat_model(0.1), _ctx())
    by = report["broken_by"]
    assert len(by) == 40 and by[:4] == ["clean"] * 4
    assert torch.count_nonzero(delta[:4]) == 0
    assert set(by) <= {None, "clean", "apgd-ce", "apgd-dlr", "square"}
    assert sum(report["broken_by_counts"].values()) + report["robust"] == 40
    fooled = _fooled(clf, x, delta, y)
    assert fooled.tolist() == [b is not None for b in by]
    assert report["gradient_attacked"] == 36 and report["broken_by_counts"]["apgd-ce"] > 0
    assert report["warnings"] == []  # a normal model: the gradient attacks leave nothing
    assert report["dlr_stage"] == "dlr"


def test_auto_warns_of_gradient_masking():
    clf, x = _linear(wrap=MaskedNet), torch.randn(40, 2, 40)
    y = _labels(clf, x)
    attack = _auto()
    report = attack.run(clf, x, y, attack.threat_model(0.15), _ctx()).report
    n, m = report["broken_by_counts"]["square"], report["square_attacked"]
    assert n > 10
    assert report["warnings"] == [
        f"gradient masking suspected: square broke {n} of {m} records "
        "that apgd-ce and apgd-dlr failed on"
    ]
    assert report["square_queries_mean"] <= 200


def test_auto_merges_batch_reports_and_uses_targeted_dlr_for_four_classes(trained):
    clf, x, y = trained
    attack = _auto(n_target_classes=2, n_queries=50)
    threat = attack.threat_model(0.15)
    parts = [
        attack.run(clf, x[p], y[p], threat, _ctx(k=4)).report for p in (slice(0, 48), slice(48, 96))
    ]
    report = type(attack).merge_reports(parts)
    assert report["records"] == 96
    assert report["broken_by"] == parts[0]["broken_by"] + parts[1]["broken_by"]
    for key in ("gradient_attacked", "square_attacked", "robust"):
        assert report[key] == parts[0][key] + parts[1][key], key
    assert report["dlr_stage"] == "dlr_targeted (2 targets)"
    assert report["warnings"] == []


def test_auto_on_multilabel_breaks_records_with_the_margin_loss():
    clf, x = tiny_classifier(n_classes=4, seed=1), torch.randn(16, 2, 40)
    y = _labels(clf, x, "multilabel")
    attack = _auto(steps=5, n_queries=30)
    delta, report = attack.run(clf, x, y, attack.threat_model(0.5), _ctx("multilabel", k=4))
    assert report["dlr_stage"] == "neg_margin"
    assert _fooled(clf, x, delta, y, "multilabel").tolist() == [
        b is not None for b in report["broken_by"]
    ]
    assert report["robust"] < 16
