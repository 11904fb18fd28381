"""Universal DeepFool (METHODS.md §3): DeepFool's exact step on linear classifiers, batching,
and the universal perturbation against the core's audit (budgets, band, universality)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ecgarena import (
    Classifier,
    DatasetInfo,
    Host,
    Split,
    energy_above,
    l2_norms,
    lowpass,
    project,
    smooth,
)
from ecgarena.testing import Checked, budgets, check_attack, signals, tiny_classifier
from ecgarena_scar import SCARAttack
from ecgarena_scar.universal import smoothing_kernel
from ecgarena_universal_deepfool import UniversalDeepFool
from ecgarena_universal_deepfool.deepfool import decision, deepfool, same
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

HOST = Host(builtins=False)


def _linear(leads: int, time: int, n_out: int, seed: int) -> tuple[Classifier, torch.Tensor]:
    """A linear classifier over the flattened record, and its weights `(C, L·T)` (float64)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(leads * time, n_out))
    nn.init.normal_(net[1].weight, std=0.3)
    nn.init.normal_(net[1].bias, std=1.0)
    return Classifier(net).eval(), net[1].weight.detach().double()


def _logits(clf: Classifier, x: torch.Tensor) -> torch.Tensor:
    """Logits in float64 from the linear layer (the reference for the analytic distances)."""
    layer = clf.net[1]
    with torch.no_grad():
        return x.double().flatten(1) @ layer.weight.double().T + layer.bias.double()


def _info(leads, time, fs, task="multiclass", n_classes=3) -> DatasetInfo:
    classes = tuple(f"c{i}" for i in range(n_classes))
    return DatasetInfo("t", task, classes, tuple(f"L{i}" for i in range(leads)), fs, time)


def _run(attack, x, budget, fs=100.0, task="multiclass", seed=0, clf=None, train=None) -> Checked:
    """The attack run as the engine runs it: δ, the audit, its report and the threat model."""
    return check_attack(attack, x, budget, clf, fs, task, seed=seed, train=train)


# --- DeepFool ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_classes=st.integers(2, 6),
    overshoot=st.sampled_from([0.0, 0.02, 0.1]),
)
def test_deepfool_l2_is_the_exact_minimal_flip_of_a_linear_classifier(seed, n_classes, overshoot):
    clf, w = _linear(2, 16, n_classes, seed)
    x = torch.randn(1, 2, 16, generator=torch.Generator().manual_seed(seed))
    f = _logits(clf, x)[0]
    k = int(f.argmax())
    gaps = {j: float(f[k] - f[j]) for j in range(n_classes) if j != k}
    dists = {j: gaps[j] / float((w[j] - w[k]).norm()) for j in gaps}
    nearest = min(dists, key=dists.get)
    assume(gaps[nearest] > 0.1)  # DeepFool adds 1e-4 to |f'|: negligible beyond this gap
    found = deepfool(clf, x, "multiclass", "l2", overshoot)
    r = found.r
    assert r.shape == x.shape
    assert int(found.iterations) == 1  # one linearisation is exact for a linear model
    assert float(r.double().norm()) == pytest.approx((1 + overshoot) * dists[nearest], rel=1e-3)
    # along the normal of the nearest boundary
    normal = (w[nearest] - w[k]) / (w[nearest] - w[k]).norm()
    assert float(r.double().flatten() @ normal) == pytest.approx(float(r.double().norm()), rel=1e-5)
    with torch.no_grad():
        assert int(clf(x).argmax()) == k
        if overshoot > 0:
            assert bool(found.fooled) and int(clf(x + r).argmax()) != k
        # minimal: 1 % short of the boundary along r the decision has not changed
        assert int(clf(x + 0.99 * r / (1 + overshoot)).argmax()) == k


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 6))
def test_deepfool_linf_step_for_a_linear_classifier(seed, n_classes):
    clf, w = _linear(2, 16, n_classes, seed)
    x = torch.randn(1, 2, 16, generator=torch.Generator().manual_seed(seed))
    f = _logits(clf, x)[0]
    k = int(f.argmax())
    gaps = {j: float(f[k] - f[j]) for j in range(n_classes) if j != k}
    dists = {j: gaps[j] / float((w[j] - w[k]).abs().sum()) for j in gaps}
    nearest = min(dists, key=dists.get)
    assume(gaps[nearest] > 0.1)
    found = deepfool(clf, x, "multiclass", "linf", 0.02)
    assert int(found.iterations) == 1 and bool(found.fooled)
    r = found.r.double()
    step = (gaps[nearest] + 1e-4) / float((w[nearest] - w[k]).abs().sum())  # the reference's
    assert float(r.abs().max()) == pytest.approx(1.02 * step, rel=1e-3)
    assert torch.allclose(r.abs(), r.abs().max().expand_as(r))  # a pure sign step
    with torch.no_grad():
        assert int(clf(x + found.r).argmax()) != k


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_labels=st.integers(1, 6))
def test_deepfool_multilabel_flips_the_nearest_label(seed, n_labels):
    clf, w = _linear(2, 16, n_labels, seed)
    x = torch.randn(3, 2, 16, generator=torch.Generator().manual_seed(seed))
    z = _logits(clf, x)
    dists = z.abs() / w.norm(dim=1)
    assume(bool((z.abs().gather(1, dists.argmin(1, keepdim=True)) > 0.1).all()))
    found = deepfool(clf, x, "multilabel", "l2", 0.02)
    with torch.no_grad():
        before, after = decision(clf(x), "multilabel"), decision(clf(x + found.r), "multilabel")
    assert torch.all((before != after).any(1))
    assert torch.all(found.fooled)
    norms = found.r.double().flatten(1).norm(dim=1)
    nearest = dists.argmin(1, keepdim=True)  # the step is (|h| + 1e-4) / ‖w‖ (the reference's)
    step = (z.abs().gather(1, nearest) + 1e-4).squeeze(1) / w.norm(dim=1)[nearest.squeeze(1)]
    assert torch.allclose(norms, 1.02 * step, rtol=1e-3)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_deepfool_equals_one_record_at_a_time(task, norm, seed):
    clf = tiny_classifier(2, 3, seed)
    x = torch.randn(4, 2, 64, generator=torch.Generator().manual_seed(seed))
    batched = deepfool(clf, x, task, norm, 0.02, max_iter=10)
    singles = [deepfool(clf, x[i : i + 1], task, norm, 0.02, max_iter=10) for i in range(4)]
    r = torch.cat([s.r for s in singles])
    assert torch.allclose(batched.r, r, rtol=1e-4, atol=1e-6)
    assert torch.equal(batched.iterations, torch.cat([s.iterations for s in singles]))
    assert torch.equal(batched.fooled, torch.cat([s.fooled for s in singles]))


def test_decision_and_same():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, -0.5, 0.2]])
    assert decision(logits, "multiclass").tolist() == [1, 0]
    assert decision(logits, "multilabel").tolist() == [[1, 1, 0], [1, 0, 1]]
    assert same(torch.tensor([1, 0]), torch.tensor([1, 2])).tolist() == [True, False]
    a, b = torch.tensor([[1, 0], [1, 1]]), torch.tensor([[1, 0], [1, 0]])
    assert same(a, b).tolist() == [True, False]


# --- the universal perturbation through the audit ------------------------------------------


def test_registered():
    attack = HOST.create("attacks", "universal-deepfool", {"norm": "l2"})
    assert isinstance(attack, UniversalDeepFool) and attack.norm == "l2"
    assert attack.threat_model(0.2).universal and attack.threat_model(0.2).band_hz == 15.0
    assert UniversalDeepFool(post_filter=False).threat_model(0.2).band_hz is None


@settings(max_examples=15, deadline=None)
@given(
    x=signals(batch=6, leads=2, time=512),
    budget=budgets(2, max_mv=0.5),
    task=st.sampled_from(["multiclass", "multilabel"]),
    seed=st.integers(0, 1000),
)
def test_linf_uap_respects_lead_budgets_band_and_universality(x, budget, task, seed):
    attack = UniversalDeepFool(max_passes=2, seed=seed)
    done = _run(attack, x, budget, task=task, seed=seed)
    delta, report, threat = done.delta, done.audit, done.threat
    assert report.passed, report.violations  # budget, band limit and universality included
    assert {c.name for c in report.checks} >= {"budget", "band limit", "universal"}
    assert delta.shape == (1, 2, 512) and delta.dtype == x.dtype
    eps = torch.tensor(threat.lead_budgets(2))
    assert torch.all(delta.abs().amax(dim=(0, 2)) <= eps + 1e-6)


@settings(max_examples=15, deadline=None)
@given(
    x=signals(batch=6, leads=2, time=256),
    budget=budgets(2, max_mv=3.0),
    post_filter=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_l2_uap_respects_the_l2_budget(x, budget, post_filter, seed):
    attack = UniversalDeepFool(norm="l2", max_passes=2, post_filter=post_filter, seed=seed)
    done = _run(attack, x, budget, seed=seed)
    delta, report, threat = done.delta, done.audit, done.threat
    assert report.passed, report.violations
    assert delta.shape == (1, 2, 256)
    per_lead = isinstance(budget, list)
    eps = torch.tensor(threat.lead_budgets(2)).view(1, 2, 1)
    bound = eps if per_lead else eps[:, :1]
    assert torch.all(l2_norms(delta.double(), per_lead) <= bound * (1 + 1e-6) + 1e-6)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("budget", [0.0, [0.0, 0.0]])
def test_zero_budget_flips_nothing(norm, budget):
    x = torch.randn(8, 2, 128, generator=torch.Generator().manual_seed(0))
    attack = UniversalDeepFool(norm=norm, max_passes=2, seed=0)
    done = _run(attack, x, budget)
    assert done.audit.passed, done.audit.violations
    assert done.delta.shape == (1, 2, 128) and torch.count_nonzero(done.delta) == 0
    assert done.attack_report["flip_rate_per_pass"] == [0.0, 0.0]
    assert done.attack_report["raw_flip_rate"] == 0.0


@pytest.mark.parametrize("seed, budget", [(1, 0.3), (2, 0.3), (2, [0.1, 0.3])])
def test_uap_fools_more_than_uniform_noise(seed, budget):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 2, 256, generator=gen)
    clf = tiny_classifier(2, 3, seed)
    train = Split(x.numpy(), np.zeros(32, dtype=np.int64), [])
    attack = UniversalDeepFool(seed=0)
    done = _run(attack, x[:4], budget, seed=0, clf=clf, train=train)
    v, threat = done.delta, done.threat
    assert done.audit.passed, done.audit.violations
    assert done.attack_report["fit_records"] == 32
    eps = torch.tensor(threat.lead_budgets(2)).view(1, 2, 1)
    with torch.no_grad():
        clean = clf(x).argmax(1)
        uap_rate = (clf(x + v).argmax(1) != clean).float().mean().item()
        noise_rate = max(
            (clf(x + (torch.rand(1, 2, 256, generator=gen) * 2 - 1) * eps).argmax(1) != clean)
            .float()
            .mean()
            .item()
            for _ in range(20)
        )
    assert uap_rate > noise_rate, (uap_rate, noise_rate)
    assert uap_rate >= 0.5


# --- the seed's baseline post-filter -------------------------------------------------------


@pytest.mark.parametrize("fs, taps", [(100.0, 5), (250.0, 13), (500.0, 25)])
def test_post_filter_is_the_seeds_lowpass_then_scar_smoothing_then_clip(fs, taps):
    """v_base = Clip_amp(F_low(v_raw)) with SCAR's W = 25 taps (50 ms) smoothing at 500 Hz and
    the same 50 ms in taps at other rates, and the 15 Hz cut-off: the default form."""
    attack = UniversalDeepFool()
    assert attack.post_filter and attack.post_filter_form == "lowpass-smooth-clip"
    kernel = smoothing_kernel(fs)
    assert len(kernel) == taps and torch.equal(kernel, SCARAttack().kernel(fs))  # SCAR's own W
    threat = attack.threat_model([0.1, 0.2])
    assert threat.band_hz == 15.0 == SCARAttack().cutoff_hz
    v = torch.randn(1, 2, int(4 * fs), generator=torch.Generator().manual_seed(0)) * 0.3
    v = project(v, threat)
    expected = project(smooth(lowpass(v, fs, 15.0, 4), kernel), threat)  # low-pass, W, clip
    assert torch.equal(attack.post_filtered(v, threat, fs), expected)
    old = UniversalDeepFool(post_filter_form="lowpass-clip").post_filtered(v, threat, fs)
    assert torch.equal(old, project(lowpass(v, fs, 15.0, 4), threat))
    assert not torch.allclose(old, expected)


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_smoothing_before_the_clip_leaves_less_above_the_band(fs):
    """A saturated 10 Hz square wave (a sign-like UAP near the cut-off): the clip after the
    filter adds harmonics; the W smoothing first keeps them smaller (measured ≈ 0.1–0.3 % vs
    ≈ 0.7–1.0 % above 25 Hz), both inside the audit's 2 %."""
    t = torch.arange(int(10 * fs), dtype=torch.float64) / fs
    v = 0.1 * torch.sign(torch.sin(2 * torch.pi * 10.0 * t)).view(1, 1, -1)
    threat = UniversalDeepFool().threat_model(0.1)

    def share(form: str) -> float:
        out = UniversalDeepFool(post_filter_form=form).post_filtered(v, threat, fs)
        assert out.abs().max() <= 0.1 + 1e-12
        return float(energy_above(out, fs, 25.0).max())

    paper, old = share("lowpass-smooth-clip"), share("lowpass-clip")
    assert paper < 0.5 * old and old < 0.02, (paper, old)


def test_report_names_the_post_filter_form():
    x = torch.randn(4, 2, 128, generator=torch.Generator().manual_seed(0))
    attack = UniversalDeepFool(max_passes=1, batch=4, max_iter_df=3, seed=0)
    done = _run(attack, x, 0.2)
    assert done.audit.passed, done.audit.violations
    report = done.attack_report
    assert report["post_filter"] is True
    assert report["post_filter_form"] == "lowpass-smooth-clip"
    assert report["smoothing_taps"] == 5  # 50 ms at 100 Hz
    plain = UniversalDeepFool(max_passes=1, batch=4, max_iter_df=3, seed=0, post_filter=False)
    assert "post_filter_form" not in _run(plain, x, 0.2).attack_report
