"""none, median and pgd-at: median invariants (METHODS.md §5), BPDA, and real training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ecgarena import DatasetInfo, FitContext, Host, Split, TrainSpec
from ecgarena.testing import TinyNet, signals
from ecgarena_basic_defenses.median import MedianFilter, median_filter
from hypothesis import given, settings
from hypothesis import strategies as st

HOST = Host(builtins=False)
odd = st.sampled_from([1, 3, 5, 7])


@settings(max_examples=200, deadline=None)
@given(signals(batch=2, leads=2, time=30), odd)
def test_median_shape_range_and_membership(x, k):
    y = median_filter(x, k)
    assert y.shape == x.shape
    assert torch.all(y >= x.amin(-1, keepdim=True)) and torch.all(y <= x.amax(-1, keepdim=True))
    # every output is one of the input values of its lead
    for b in range(2):
        for lead in range(2):
            assert torch.isin(y[b, lead], x[b, lead]).all()


@settings(max_examples=200, deadline=None)
@given(signals(batch=1, leads=1, time=30), odd, st.floats(0.1, 10), st.floats(-5, 5))
def test_median_commutes_with_increasing_affine_maps(x, k, a, b):
    assert torch.allclose(median_filter(a * x + b, k), a * median_filter(x, k) + b, atol=1e-4)


def test_median_identity_constant_monotone_and_spikes():
    x = torch.randn(1, 1, 50)
    assert torch.equal(median_filter(x, 1), x)
    const = torch.full((1, 1, 20), 0.3)
    assert torch.allclose(median_filter(const, 5), const)
    ramp = torch.arange(20.0).view(1, 1, -1)
    assert torch.equal(median_filter(ramp, 5)[..., 2:-2], ramp[..., 2:-2])
    spike = torch.zeros(1, 1, 20)
    spike[..., 10] = 5.0
    assert median_filter(spike, 3).abs().max() == 0


def test_bpda_backward_is_identity_and_exact_backward_is_sparse():
    x = torch.randn(1, 1, 30, requires_grad=True)
    MedianFilter(5, bpda=True)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    x.grad = None
    MedianFilter(5, bpda=False)(x).sum().backward()
    assert x.grad.sum() == pytest.approx(30.0) and (x.grad == 0).any()
    with pytest.raises(ValueError, match="odd"):
        MedianFilter(4)


def _context(n=120, t=60, seed=0) -> FitContext:
    """A learnable two-class problem: class 1 has a positive bump in lead 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.1, (n, 2, t)).astype(np.float32)
    x[y == 1, 0, 20:40] += 0.5
    info = DatasetInfo("toy", "multiclass", ("a", "b"), ("L0", "L1"), 100.0, t)
    tr, va = slice(0, 90), slice(90, n)
    return FitContext(
        info=info,
        train=Split(x[tr], y[tr], []),
        val=Split(x[va], y[va], []),
        build_net=lambda: TinyNet(2, 2),
        train_spec=TrainSpec(epochs=6, batch_size=32, lr=1e-2),
        device=torch.device("cpu"),
        seed=seed,
    )


@pytest.mark.parametrize(
    "name, options",
    [("none", {}), ("median", {"window_ms": 30}), ("pgd-at", {"eps_mv": 0.05, "steps": 2})],
)
def test_defenses_build_train_and_learn(name, options):
    ctx = _context()
    defense = HOST.create("defenses", name, options)
    torch.manual_seed(0)
    clf = defense.build(ctx)
    summary = defense.train(clf, ctx)
    assert summary["best_val_score"] > 0.8, summary
    assert 1 <= summary["epochs_run"] <= 6
    assert not clf.training  # handed back in eval mode
    assert clf.standardize.std.item() > 0


def test_median_metadata_is_honest():
    clf = HOST.create("defenses", "median", {"window_ms": 50}).build(_context())
    assert clf.info.differentiable is False and clf.info.gradient == "bpda"
    assert clf.preprocess.k == 5  # 50 ms at 100 Hz


def test_pgd_at_is_more_robust_than_erm():
    from ecgarena import ThreatModel, pgd

    ctx = _context(n=200)
    scores = {}
    for name, opts in (("none", {}), ("pgd-at", {"eps_mv": 0.15, "steps": 3})):
        torch.manual_seed(0)
        d = HOST.create("defenses", name, opts)
        clf = d.build(ctx)
        d.train(clf, ctx)
        x, y = torch.from_numpy(ctx.val.x), torch.from_numpy(ctx.val.y)
        delta = pgd(clf, x, y, ThreatModel(budget_mv=0.15), "multiclass", steps=10)
        with torch.no_grad():
            scores[name] = (clf(x + delta).argmax(1) == y).float().mean().item()
    assert scores["pgd-at"] > scores["none"], scores


def test_denoiser_keeps_shape_learns_and_bpda_passes_the_gradient_through():
    from ecgarena_basic_defenses.denoiser import DenoisingAutoencoder, train_denoiser

    torch.manual_seed(0)
    t = np.arange(250) / 100.0
    clean = np.stack([np.sin(2 * np.pi * f * t) for f in np.linspace(0.5, 3, 64)])
    x = clean[:, None, :].repeat(2, axis=1).astype(np.float32)
    dae = DenoisingAutoencoder(2, width=8)
    history = train_denoiser(dae, x, 0.1, 40, 16, 3e-3, torch.device("cpu"), 0)
    assert history[-1] < history[0]
    noisy = torch.from_numpy(x[:8]) + 0.1 * torch.randn(8, 2, 250)
    with torch.no_grad():
        out = dae(noisy)
    assert out.shape == noisy.shape
    err_in = float(((noisy - torch.from_numpy(x[:8])) ** 2).mean())
    err_out = float(((out - torch.from_numpy(x[:8])) ** 2).mean())
    assert err_out < err_in  # it denoises
    z = noisy.clone().requires_grad_(True)
    dae.bpda = True
    (g_bpda,) = torch.autograd.grad(dae(z).sum(), z)
    assert torch.equal(g_bpda, torch.ones_like(z))  # identity backward
    dae.bpda = False
    (g_exact,) = torch.autograd.grad(dae(z).sum(), z)
    assert not torch.allclose(g_exact, g_bpda)  # end to end through the autoencoder
