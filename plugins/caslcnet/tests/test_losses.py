"""MART and TRADES (METHODS.md §6): reductions at x' = x, bounds, finiteness at p_y → 1, KL ≥ 0,
and inner attacks that stay inside ε, leave the model's modes alone and raise their objective."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ecgarena.testing import signals, tiny_classifier
from ecgarena_caslcnet.losses import (
    as_classes,
    kl_rows,
    mart_example,
    mart_loss,
    task_ce,
    trades_example,
    trades_loss,
)
from hypothesis import given, settings
from hypothesis import strategies as st

TASKS = st.sampled_from(["multiclass", "multilabel"])


def batch(seed: int, task: str, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(5, 4, generator=g) * scale
    if task == "multilabel":
        return logits, torch.randint(0, 2, (5, 4), generator=g).float()
    return logits, torch.randint(0, 4, (5,), generator=g)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), task=TASKS, beta=st.floats(0, 20))
def test_at_x_prime_equal_x_trades_is_ce_and_the_mart_robust_term_is_zero(seed, task, beta):
    z, y = batch(seed, task)
    ce = F.binary_cross_entropy_with_logits(z, y) if task == "multilabel" else F.cross_entropy(z, y)
    assert trades_loss(z, z, y, task, beta) == pytest.approx(float(ce), rel=1e-5, abs=1e-6)
    assert task_ce(z, y, task) == pytest.approx(float(ce), rel=1e-5, abs=1e-6)
    assert mart_loss(z, z, y, task, beta) == pytest.approx(
        float(mart_loss(z, z, y, task, 0.0)), rel=1e-5, abs=1e-6
    )


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), task=TASKS, scale=st.floats(0.1, 1e4))
def test_losses_are_bounded_below_and_finite_even_when_p_y_tends_to_one(seed, task, scale):
    clean, y = batch(seed, task, scale)
    adv, _ = batch(seed + 1, task, scale)
    for a in (adv, clean):
        mart = mart_loss(clean, a, y, task)
        trades = trades_loss(clean, a, y, task)
        assert torch.isfinite(mart) and torch.isfinite(trades)
        assert (
            mart >= -math.log(1.0001) - 1e-6 and trades >= 0
        )  # the reference's 1.0001 in the BCE term
    # confident and right: p_y → 1 on both, every term → 0 but stays finite
    sure = torch.full((3, 4), -scale)
    labels = torch.tensor([0, 1, 2])
    sure[torch.arange(3), labels] = scale
    t = labels if task == "multiclass" else F.one_hot(labels, 4).float()
    assert torch.isfinite(mart_loss(sure, sure, t, task))
    assert torch.isfinite(trades_loss(sure, sure, t, task))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), task=TASKS)
def test_kl_is_non_negative_and_zero_on_itself(seed, task):
    p, _ = batch(seed, task)
    q, _ = batch(seed + 7, task)
    p2, q2 = as_classes(p, task), as_classes(q, task)
    assert (kl_rows(p2, q2) >= -1e-6).all()
    assert torch.allclose(kl_rows(p2, p2), torch.zeros(len(p2)), atol=1e-6)


def test_mart_gradient_reaches_the_weights_through_p_and_p_y():
    """(1 − p_y) and p are not detached: the robust term has a gradient on the clean logits."""
    clean = torch.randn(4, 3, requires_grad=True)
    adv = torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    robust = mart_loss(clean, adv, y, "multiclass", 1.0) - mart_loss(
        clean, adv, y, "multiclass", 0.0
    )
    (grad,) = torch.autograd.grad(robust, clean)
    assert grad.abs().sum() > 0


@settings(max_examples=20, deadline=None)
@given(
    x=signals(3, 2, 64),
    eps=st.floats(0.001, 0.5),
    steps=st.integers(1, 4),
    kind=st.sampled_from(["mart", "trades"]),
)
def test_inner_attacks_respect_eps_and_leave_modes_alone(x, eps, steps, kind):
    clf = tiny_classifier(2, 3).train()
    y = torch.tensor([0, 1, 2])
    gen = torch.Generator().manual_seed(0)
    before = x.clone()
    if kind == "mart":
        adv = mart_example(clf, x, y, "multiclass", eps, eps / 4, steps, 1.0, gen)
    else:
        adv = trades_example(clf, x, "multiclass", eps, eps / 4, steps, 1.0, gen)
    assert (adv - x).abs().max() <= eps + 1e-6
    assert torch.equal(x, before) and clf.training and all(m.training for m in clf.modules())


def test_inner_attacks_raise_their_objective():
    torch.manual_seed(0)
    clf = tiny_classifier(2, 3)
    x, y = torch.randn(8, 2, 64), torch.randint(0, 3, (8,))
    gen = torch.Generator().manual_seed(0)
    adv = mart_example(clf, x, y, "multiclass", 0.3, 0.05, 10, 1.0, gen)
    assert task_ce(clf(adv), y, "multiclass") > task_ce(clf(x), y, "multiclass")
    adv = trades_example(clf, x, "multiclass", 0.3, 0.05, 10, 1.0, gen)
    assert kl_rows(clf(x), clf(adv)).sum() > 1e-4
