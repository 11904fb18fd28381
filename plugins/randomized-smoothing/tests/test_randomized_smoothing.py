"""Randomized smoothing (METHODS.md §4): the Clopper–Pearson bound, radii, abstention, the
constant-classifier radius cap, reproducibility, batching, EOT logits, and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ecgarena import Host
from ecgarena.testing import toy_fit_context
from ecgarena_randomized_smoothing import ABSTAIN, SmoothedClassifier
from ecgarena_randomized_smoothing.smoothing import lower_confidence_bound, radius
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta, norm
from torch import nn


class Constant(nn.Module):
    """A base classifier that always says `label` (logits independent of the input)."""

    def __init__(self, n_classes: int, label: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.full((n_classes,), -5.0))
        with torch.no_grad():
            self.logits[label] = 5.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(1, keepdim=True)


class Threshold(nn.Module):
    """Class 1 when the mean of the record is above 0, else class 0 (two logits)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1, keepdim=True) * 50
        return torch.cat([-m, m], dim=1)


def smoothed(net: nn.Module, task: str = "multiclass", sigma: float = 0.1, seed: int = 0):
    return SmoothedClassifier(net, sigma, samples=8, task=task, seed=seed, batch=64).eval()


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), frac=st.floats(0, 1), alpha=st.sampled_from([1e-3, 1e-2, 0.05]))
def test_lower_bound_is_the_one_sided_clopper_pearson_bound(n, frac, alpha):
    n_a = int(round(frac * n))
    p = float(lower_confidence_bound(np.array([n_a]), n, alpha)[0])
    expected = 0.0 if n_a == 0 else beta.ppf(alpha, n_a, n - n_a + 1)
    assert p == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= p <= n_a / n + 1e-12  # a lower bound never exceeds the point estimate
    if n_a < n:  # one more success never lowers the bound
        assert float(lower_confidence_bound(np.array([n_a + 1]), n, alpha)[0]) >= p


@settings(max_examples=200, deadline=None)
@given(p=st.floats(0, 1), q=st.floats(0, 1), sigma=st.floats(0.001, 2))
def test_radius_is_zero_below_half_and_grows_with_p_and_sigma(p, q, sigma):
    r = float(radius(np.array([p]), sigma)[0])
    assert r >= 0 and (r == 0 if p < 0.5 else r == pytest.approx(sigma * norm.ppf(p)))
    lo, hi = sorted((p, q))
    assert float(radius(np.array([lo]), sigma)[0]) <= float(radius(np.array([hi]), sigma)[0])
    assert float(radius(np.array([p]), 2 * sigma)[0]) == pytest.approx(2 * r)


def test_constant_classifier_reaches_the_radius_cap():
    clf = smoothed(Constant(3, label=2), sigma=0.2)
    pred, r = clf.certify(torch.zeros(2, 1, 16), n0=10, n=1000, alpha=0.001)
    assert (pred == 2).all()
    cap = 0.2 * norm.ppf(0.001 ** (1 / 1000))
    assert r == pytest.approx([cap, cap]) and cap / 0.2 == pytest.approx(2.463, abs=1e-3)


@settings(max_examples=25, deadline=None)
@given(level=st.floats(-0.3, 0.3), seed=st.integers(0, 1000))
def test_certify_never_gives_a_radius_when_abstaining(level, seed):
    clf = smoothed(Threshold(), sigma=1.0, seed=seed)
    x = torch.full((4, 1, 8), level)
    pred, r = clf.certify(x, n0=20, n=100, alpha=0.001)
    assert ((pred == ABSTAIN) == (r == 0)).all()
    assert (r >= 0).all()


def test_predict_abstains_on_a_coin_flip_and_not_on_a_sure_thing():
    coin = smoothed(Threshold(), sigma=1.0)
    assert (coin.predict(torch.zeros(3, 1, 8), n=200, alpha=0.001) == ABSTAIN).all()
    sure = smoothed(Constant(3, label=1))
    assert (sure.predict(torch.zeros(3, 1, 8), n=200, alpha=0.001) == 1).all()


def test_counts_do_not_depend_on_batching_and_sum_to_n():
    x = torch.full((5, 1, 8), 0.05)
    a = SmoothedClassifier(Threshold(), 0.1, 8, "multiclass", seed=3, batch=7).eval()
    counts = a.counts(x, 103)  # 7 // 5 = 1 draw per chunk: the last chunk is shorter
    assert (counts.sum(1) == 103).all()
    b = SmoothedClassifier(Threshold(), 0.1, 8, "multiclass", seed=3, batch=1000).eval()
    # a different chunking reorders the draws, so the counts agree in distribution only
    assert torch.allclose(counts.float().mean(0), b.counts(x, 103).float().mean(0), atol=12)


def test_smoothed_prediction_is_reproducible_for_a_seed_and_differentiable():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.randn(4, 2, 8, requires_grad=True)
    first = smoothed(net, seed=5)(x)
    again = smoothed(net, seed=5)(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, smoothed(net, seed=6)(x))
    (grad,) = torch.autograd.grad(first.sum(), x)  # EOT: the gradient of the noise average
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    probs = first.exp().sum(1)
    assert torch.allclose(probs, torch.ones(4), atol=1e-4)  # log of mean probabilities


def test_multilabel_certify_is_per_label_with_bonferroni():
    net = Constant(3, label=0)
    clf = smoothed(net, task="multilabel", sigma=0.1)
    pred, r = clf.certify(torch.zeros(2, 1, 8), n0=10, n=500, alpha=0.003)
    assert pred.tolist() == [[1, 0, 0], [1, 0, 0]]
    cap = 0.1 * norm.ppf((0.003 / 3) ** (1 / 500))  # α split over 3 labels
    assert r == pytest.approx([cap, cap])


def test_defense_trains_with_noise_and_reports_honest_metadata():
    defense = Host().create("defenses", "randomized-smoothing", {"sigma_mv": 0.05, "samples": 2})
    ctx = toy_fit_context(n=40)
    clf = defense.build(ctx)
    summary = defense.train(clf, ctx)
    assert summary["epochs_run"] >= 1
    info = clf.info
    assert info.certifies and not info.deterministic and info.gradient == "eot"
    assert info.forward_passes == 2
