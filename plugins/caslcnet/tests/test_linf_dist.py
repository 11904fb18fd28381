"""ℓ∞-distance nets (METHODS.md §7): 1-Lipschitz logits at p = ∞, sound certified radii against
PGD, identity init, the eval mean shift as a translation, the overflow-free ℓp distance, the p
schedule and the hinge loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ecgarena import ThreatModel, pgd
from ecgarena.testing import signals
from ecgarena_caslcnet.certified import CertifiedClassifier
from ecgarena_caslcnet.linf_dist import (
    IDENTITY_VALUE,
    DistLayer,
    LinfDistNet,
    distance,
    hinge_loss,
    p_schedule,
    set_p,
    worst_margins,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def random_net(seed: int, n_classes: int = 3, time: int = 40) -> LinfDistNet:
    """A small net in eval mode with random running means (an untrained but generic net)."""
    torch.manual_seed(seed)
    net = LinfDistNet(2, time, n_classes, width=6, hidden=12)
    for m in net.modules():
        if isinstance(m, DistLayer) and m.mean_shift:
            m.running_mean.normal_(0, 3)
        if isinstance(m, DistLayer) and m.bias is not None:
            m.bias.data.normal_(0, 1)
    return net.eval()


@settings(max_examples=60, deadline=None)
@given(x=signals(4, 2, 40), seed=st.integers(0, 1000), scale=st.floats(1e-3, 3))
def test_logits_are_1_lipschitz_in_linf_at_p_inf(x, seed, scale):
    net = random_net(seed)
    other = x + scale * (torch.rand_like(x) * 2 - 1)
    with torch.no_grad():
        gap = (net(x) - net(other)).abs().amax(1)
    dist = (x - other).flatten(1).abs().amax(1)
    assert (gap <= dist * (1 + 1e-5) + 1e-5).all()


@settings(max_examples=25, deadline=None)
@given(
    x=signals(3, 2, 40),
    seed=st.integers(0, 1000),
    fraction=st.floats(0.05, 0.999),
    task=st.sampled_from(["multiclass", "multilabel"]),
    std=st.floats(0.1, 2.0),
)
def test_pgd_inside_the_certified_radius_never_changes_the_prediction(x, seed, fraction, task, std):
    clf = CertifiedClassifier(random_net(seed), task, "test").eval()
    clf.set_standardization(0.1, std)
    pred, radius = clf.certify(x)
    assert (radius >= 0).all()
    gen = torch.Generator().manual_seed(seed)
    for i in np.flatnonzero(radius > 1e-4):
        eps = min(float(radius[i]) * fraction, 10.0)  # mV, inside the radius; ≤ 50 mV is valid
        xi = x[i : i + 1]
        target = torch.as_tensor(pred[i : i + 1])
        if task == "multilabel":
            target = target.float()
        delta = pgd(clf, xi, target, ThreatModel(norm="linf", budget_mv=eps), task, generator=gen)
        assert delta.abs().max() <= eps + 1e-6
        after, _ = clf.certify(xi + delta)
        assert np.array_equal(after, pred[i : i + 1])


def test_certify_is_margin_over_two_times_std_and_needs_p_inf():
    clf = CertifiedClassifier(random_net(0), "multiclass", "test").eval()
    clf.set_standardization(0.0, 0.4)
    x = torch.randn(5, 2, 40)
    with torch.no_grad():
        top2 = clf(x).topk(2, 1).values
    pred, radius = clf.certify(x)
    assert np.allclose(radius, ((top2[:, 0] - top2[:, 1]) / 2 * 0.4).numpy(), atol=1e-6)
    set_p(clf.net, 8.0)
    with pytest.raises(RuntimeError, match="p = ∞"):
        clf.certify(x)


def test_identity_init_passes_each_coordinate_through_plus_ten():
    torch.manual_seed(0)
    layer = DistLayer(4, 8)
    w = layer.weight.detach()
    assert all(w[i, i % 4] == -IDENTITY_VALUE for i in range(8))
    x = torch.rand(5, 4) * 4 - 2  # |x| ≤ 2: the −10 entry dominates every other coordinate
    with torch.no_grad():
        u = layer.distances(x)
    assert torch.allclose(u, x[:, torch.arange(8) % 4] + IDENTITY_VALUE, atol=1e-5)
    wide = DistLayer(4, 3)  # d_in > d_out: plain N(0, 1) weights
    assert (wide.weight.abs() < IDENTITY_VALUE).all()


def test_mean_shift_is_the_batch_mean_in_training_and_a_translation_in_eval():
    torch.manual_seed(1)
    layer = DistLayer(3, 5, kernel=2, stride=2)
    x = torch.randn(4, 3, 10)
    out = layer(x)  # training: zero mean per channel over batch and time
    assert torch.allclose(out.mean((0, 2)), torch.zeros(5), atol=1e-5)
    batch_mean = layer.distances(x).mean((0, 2)).detach()
    assert torch.allclose(layer.running_mean, 0.1 * batch_mean)
    layer.eval()
    a, b = torch.randn(2, 3, 10), torch.randn(2, 3, 10) * 3
    with torch.no_grad():
        shift_a = layer(a) - layer.distances(a)
        shift_b = layer(b) - layer.distances(b)
    assert torch.allclose(shift_a, shift_b) and torch.allclose(
        shift_a, -layer.running_mean.view(1, -1, 1).expand_as(shift_a)
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.sampled_from([8.0, 40.0, 300.0]), scale=st.floats(1, 50))
def test_lp_distance_matches_cdist_and_does_not_overflow(seed, p, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 6, generator=g, dtype=torch.float64) * scale
    w = torch.randn(4, 6, generator=g, dtype=torch.float64) * scale
    d = distance(x.float(), w.float(), p).double()
    assert torch.isfinite(d).all()
    linf = torch.cdist(x, w, p=math.inf)
    assert (d >= linf * (1 - 1e-5)).all() and (d <= linf * 6 ** (1 / p) * (1 + 1e-5)).all()
    if p == 8.0:
        assert torch.allclose(d, torch.cdist(x, w, p=p), rtol=1e-4)


def test_lp_distance_gradient_is_exact():
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: distance(a, b, 8.0), (x, w))


def test_p_schedule_goes_from_p_start_to_infinity():
    assert p_schedule(-0.5) == 8.0 and p_schedule(0) == 8.0
    assert p_schedule(0.5) == pytest.approx(math.sqrt(8 * 1000))
    assert p_schedule(1.0) == math.inf
    values = [p_schedule(r / 10) for r in range(11)]
    assert values == sorted(values)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    eps=st.floats(0, 2),
    task=st.sampled_from(["multiclass", "multilabel"]),
)
def test_hinge_is_zero_exactly_when_every_worst_margin_is_negative(seed, eps, task):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(6, 4, generator=g) * 3
    y = (
        torch.randint(0, 2, (6, 4), generator=g)
        if task == "multilabel"
        else torch.randint(0, 4, (6,), generator=g)
    )
    m = worst_margins(logits, y, eps, task)
    loss = hinge_loss(logits, y, eps, task)
    assert loss >= 0
    assert (loss == 0) == bool((m <= 0).all())
    if task == "multiclass":
        assert (m.gather(1, y.view(-1, 1)) == 0).all()
