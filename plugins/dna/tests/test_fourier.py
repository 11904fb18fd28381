"""Fourier partition (METHODS.md §8): complementary conjugate-symmetric masks of 15 Hz bands,
and filters that split a signal into two orthogonal, real, idempotent parts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ecgarena_dna.fourier import BandFilter, band_filter, band_masks
from hypothesis import given, settings
from hypothesis import strategies as st

N = st.integers(8, 1200)  # odd and even lengths
FS = st.one_of(st.sampled_from([100.0, 250.0, 300.0, 360.0, 500.0]), st.floats(35.0, 1000.0))


@settings(max_examples=200, deadline=None)
@given(n=N, fs=FS)
def test_masks_partition_the_spectrum_symmetrically(n, fs):
    m1, m2 = band_masks(n, fs)
    assert set(np.unique(m1)) <= {0.0, 1.0}
    assert np.array_equal(m1 + m2, np.ones(n))
    k = np.arange(1, n)
    assert np.array_equal(m1[k], m1[n - k]) and np.array_equal(m2[k], m2[n - k])
    assert m1[0] == 1  # DC sits in filter1's first band (0–15 Hz)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(200, 3000), fs=FS)
def test_bands_are_15_hz_wide_and_alternate(n, fs):
    half = band_masks(n, fs)[0][: n // 2 + 1]
    edges = np.flatnonzero(np.diff(half)) + 1  # first bin of each new band
    runs = np.diff(np.concatenate([[0], edges]))  # every complete band (the last is cut)
    per_band = 15.0 * n / fs
    assert np.all(np.abs(runs - per_band) <= 1)
    starts = np.concatenate([[0], edges])
    assert np.array_equal(half[starts], np.arange(len(starts)) % 2 == 0)


def test_reference_layout_at_300_hz_and_at_100_hz():
    m1, _ = band_masks(18_000, 300.0)  # the reference: 900 FFT bins per 15 Hz band
    assert m1[:900].all() and not m1[900:1800].any() and m1[1800:2700].all()
    assert m1[-899:].all() and not m1[-1799:-899].any()
    m1, _ = band_masks(1000, 100.0)  # 10 s at 100 Hz: 0–15 and 30–45 Hz pass filter1
    assert m1[:150].all() and not m1[150:300].any() and m1[300:450].all()
    assert not m1[450:501].any()


@settings(max_examples=100, deadline=None)
@given(n=N, fs=FS, seed=st.integers(0, 2**31 - 1))
def test_filters_split_a_signal_into_orthogonal_real_projections(n, fs, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, n, generator=g, dtype=torch.float64)
    y = torch.randn(2, 3, n, generator=g, dtype=torch.float64)
    m1, m2 = (torch.from_numpy(m) for m in band_masks(n, fs))
    f1x, f2x, f2y = band_filter(x, m1), band_filter(x, m2), band_filter(y, m2)
    assert not f1x.is_complex() and f1x.dtype == torch.float64
    torch.testing.assert_close(f1x + f2x, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(band_filter(f1x, m1), f1x, atol=1e-10, rtol=0)
    torch.testing.assert_close(band_filter(f2x, m2), f2x, atol=1e-10, rtol=0)
    inner = (f1x * f2y).sum(-1)
    assert (inner.abs() <= 1e-9 * x.norm(dim=-1) * y.norm(dim=-1)).all()


def test_band_filter_module_is_frozen_float32_and_checks_length():
    m1, _ = band_masks(64, 100.0)
    f = BandFilter(m1)
    assert not list(f.parameters()) and f.mask.dtype == torch.float32
    x = torch.randn(2, 2, 64, requires_grad=True)
    out = f(x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all()
    with pytest.raises(ValueError, match="64 samples, got 65"):
        f(torch.randn(1, 2, 65))
