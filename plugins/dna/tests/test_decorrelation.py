"""Decorrelation loss (METHODS.md §8): the −log(1 − R²) relation, the under-determined zero,
small for independent and large for dependent features, and per-pair swaps that keep every
term's gradient to the current member (the reference bug)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch
from ecgarena_dna.decorrelation import (
    ETA,
    decorrelation_loss,
    decorrelation_terms,
    regression_term,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.integers(20, 200),
    dim=st.integers(1, 6),
    out=st.integers(1, 5),
    mix=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_term_is_minus_log_one_minus_r_squared(rows, dim, out, mix, seed):
    g = gen(seed)
    x = torch.randn(rows, dim, generator=g, dtype=torch.float64)
    y = mix * x @ torch.randn(dim, out, generator=g, dtype=torch.float64)
    y = y + torch.randn(rows, out, generator=g, dtype=torch.float64)
    k = 8  # k ≥ D: the projection spans the regressor's columns, so OLS on [x, 1] is the fit
    term = regression_term(x, y, k, gen(seed + 1)).item()
    design = np.hstack([x.numpy(), np.ones((rows, 1))])
    coef, *_ = np.linalg.lstsq(design, y.numpy(), rcond=None)
    ss_res = ((y.numpy() - design @ coef) ** 2).sum()
    ss_tot = ((y.numpy() - y.numpy().mean(0)) ** 2).sum()
    r2 = 1 - ss_res / (ss_tot + ETA)
    assert term == pytest.approx(math.log(ss_tot + ETA) - math.log(ss_res + ETA), rel=1e-6)
    assert term == pytest.approx(-math.log(1 - r2), rel=1e-3, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(k=st.integers(1, 40), short=st.integers(1, 40), seed=st.integers(0, 1000))
def test_term_is_zero_when_under_determined(k, short, seed):
    rows = min(short, k)  # fewer than k + 1 rows
    x = torch.randn(rows, 6, generator=gen(seed), requires_grad=True)
    y = torch.randn(rows, 6, generator=gen(seed + 1))
    assert regression_term(x, y, k).item() == 0.0
    assert decorrelation_loss(x, [y, y], k).item() == 0.0


def test_small_for_independent_features_and_large_for_dependent_ones():
    g = gen(0)
    x = torch.randn(2000, 16, generator=g)
    independent = torch.randn(2000, 16, generator=g)
    dependent = x @ torch.randn(16, 16, generator=g) + 0.01 * torch.randn(2000, 16, generator=g)
    free = decorrelation_loss(x, [independent], 32, gen(1)).item()
    tied = decorrelation_loss(x, [dependent], 32, gen(1)).item()
    assert 0 <= free < 0.05 and tied > 5.0
    assert 0 < decorrelation_loss(x, [dependent], 8, gen(1)).item() < tied  # k < D loses some
    assert decorrelation_loss(x, [], 8).item() == 0.0


def check_every_term_reaches_current(terms_fn: Callable[..., torch.Tensor]) -> None:
    """With three earlier members and many swap draws, each term has a nonzero gradient with
    respect to the current member's features."""
    g = gen(3)
    earlier = [torch.randn(64, 10, generator=g) for _ in range(3)]
    for seed in range(16):
        x = torch.randn(64, 10, generator=gen(100 + seed), requires_grad=True)
        terms = terms_fn(x, earlier, 4, gen(seed))
        for term in terms:
            (grad,) = torch.autograd.grad(term, x, retain_graph=True, allow_unused=True)
            assert grad is not None and grad.abs().sum() > 0


def reference_terms(
    x: torch.Tensor, earlier: Sequence[torch.Tensor], k: int, g: torch.Generator
) -> torch.Tensor:
    """The reference's loop: the swap reassigns X itself, so later pairs may hold two stored
    feature sets (kept here only to show that the check above catches it)."""
    terms = []
    for y in earlier:
        if torch.rand((), generator=g) < 0.5:
            x, y = y, x
        terms.append(regression_term(x, y, k, g))
    return torch.stack(terms)


def test_every_term_carries_gradient_to_the_current_features():
    check_every_term_reaches_current(decorrelation_terms)
    with pytest.raises(AssertionError):
        check_every_term_reaches_current(reference_terms)


def test_each_pair_draws_its_own_swap():
    """x is y's first column: regressing x on y fits it exactly (a huge term); y on x leaves
    y's second column unexplained (a small one). Both pairs' orientations vary independently."""
    g = gen(0)
    x = torch.randn(200, 1, generator=g)
    y = torch.cat([x, 3 * torch.randn(200, 1, generator=g)], dim=1)
    seen = set()
    for seed in range(64):
        terms = decorrelation_terms(x, [y, y], 4, gen(seed))
        seen.add(tuple((terms > 5).tolist()))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


def test_fresh_projection_on_each_call():
    g = gen(0)
    x, y = torch.randn(100, 20, generator=g), torch.randn(100, 20, generator=g)
    shared = gen(7)
    first, second = (regression_term(x, y, 4, shared).item() for _ in range(2))
    assert first != second
    assert regression_term(x, y, 4, gen(7)).item() == first  # reproducible for a seed
