"""Property tests of the SSIM and perturbation-spectrum measures in ecgarena.similarity."""

from __future__ import annotations

import numpy as np
import pytest
from ecgarena.similarity import (
    MIN_DATA_RANGE_MV,
    _ssim_per_lead,
    default_nperseg,
    energy_share_above,
    perturbation_psd,
    ssim_1d,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

PROPS = settings(max_examples=50, deadline=None)
MV = st.floats(-5.0, 5.0, allow_nan=False, allow_subnormal=False)


@st.composite
def signals(draw, min_time: int = 7, max_time: int = 64) -> np.ndarray:
    """A `(batch, leads, time)` float64 array of mV-scale values."""
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(min_time, max_time)),
    )
    return draw(arrays(np.float64, shape, elements=MV))


@st.composite
def pairs(draw) -> tuple[np.ndarray, np.ndarray]:
    """A clean signal and a second signal of the same shape."""
    x = draw(signals())
    return x, draw(arrays(np.float64, x.shape, elements=MV))


def ecg_like(n_time: int = 500, fs: float = 250.0) -> np.ndarray:
    """A `(1, 2, T)` beat train of Gaussian P/QRS/T bumps on a slow baseline, in mV."""
    t = np.arange(n_time) / fs
    sig = 0.1 * np.sin(2 * np.pi * 0.3 * t)
    for beat in np.arange(0.2, t[-1], 0.8):
        for offset, width, amp in ((-0.16, 0.025, 0.15), (0.0, 0.01, 1.2), (0.25, 0.04, 0.3)):
            sig = sig + amp * np.exp(-0.5 * ((t - beat - offset) / width) ** 2)
    return np.stack([sig, 0.6 * sig - 0.2])[None]


# ---- SSIM -------------------------------------------------------------------------------------


@PROPS
@given(signals())
def test_ssim_of_a_signal_with_itself_is_one(x):
    s = ssim_1d(x, x)
    assert s.shape == (x.shape[0],)
    np.testing.assert_allclose(s, 1.0, rtol=0, atol=1e-12)


@PROPS
@given(pairs(), st.data())
def test_ssim_is_symmetric_for_a_fixed_data_range(pair, data):
    x, y = pair
    rng = data.draw(st.floats(1e-3, 10.0), label="data_range")
    data_range = np.full(x.shape[:2], rng)
    np.testing.assert_allclose(
        _ssim_per_lead(x, y, data_range, 7), _ssim_per_lead(y, x, data_range, 7), atol=1e-12
    )
    # Through the public function: a time permutation of x has the same per-lead range.
    perm = np.asarray(data.draw(st.permutations(range(x.shape[-1])), label="perm"))
    xp = x[..., perm]
    np.testing.assert_allclose(ssim_1d(x, xp), ssim_1d(xp, x), atol=1e-12)


@PROPS
@given(pairs())
def test_ssim_lies_in_minus_one_to_one(pair):
    x, y = pair
    s = ssim_1d(x, y)
    assert np.all(np.isfinite(s))
    assert np.all(s <= 1 + 1e-12) and np.all(s >= -1 - 1e-12)


@PROPS
@given(signals(), st.data())
def test_ssim_falls_as_a_fixed_perturbation_is_scaled_up(x, data):
    # Keep every lead non-flat (ptp ≥ 0.1 mV) and the largest scaled perturbation under 1 % of
    # the lead's data range L: then, per window, luminance and structure terms are both positive
    # and non-increasing in the scale (|t·mean(d)| < K1·L, t·std(d) < K2·L), so the mean falls.
    x = x + np.linspace(0.0, 1.0, x.shape[-1])  # mostly non-flat, so assume() rarely rejects
    ptp = np.ptp(x, axis=-1)
    assume(np.all(ptp >= 0.1))
    d = data.draw(arrays(np.float64, x.shape, elements=MV), label="shape")
    peak = np.abs(d).max(axis=-1, keepdims=True)
    assume(np.any(peak > 0))
    d = np.where(peak > 0, d / np.where(peak > 0, peak, 1.0), 0.0) * (0.009 / 4) * ptp[..., None]
    scores = np.stack([ssim_1d(x, x + k * d) for k in (0.0, 0.5, 1.0, 2.0, 4.0)])
    assert np.all(np.diff(scores, axis=0) <= 1e-13)
    moved = np.any(peak[..., 0] > 0, axis=-1)  # records with a nonzero perturbation
    assert np.all(np.diff(scores[:, moved], axis=0) < 0)


def test_ssim_falls_strictly_for_a_realistic_perturbation():
    x = ecg_like()
    d = 0.05 * np.random.default_rng(0).standard_normal(x.shape)  # 50 µV noise
    scores = [float(ssim_1d(x, x + k * d)[0]) for k in (0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert 0 < scores[-1] < scores[0] < 1


@PROPS
@given(signals(), st.integers(2, 4), st.data())
def test_broadcast_y_equals_the_expanded_array(x, batch, data):
    x = np.repeat(x[:1], batch, axis=0)
    x = x + np.arange(batch)[:, None, None] * 0.1  # records differ
    y1 = data.draw(arrays(np.float64, (1, *x.shape[1:]), elements=MV), label="y")
    np.testing.assert_array_equal(ssim_1d(x, y1), ssim_1d(x, np.repeat(y1, batch, axis=0)))


def test_float32_inputs_match_float64():
    x = ecg_like().astype(np.float32)
    y = x + np.float32(0.03)
    np.testing.assert_allclose(
        ssim_1d(x, y), ssim_1d(x.astype(np.float64), y.astype(np.float64)), atol=1e-12
    )


@PROPS
@given(signals(), st.floats(-3.0, 3.0), st.floats(1e-4, 1.0))
def test_flat_clean_lead_gives_finite_values(x, level, noise):
    x = x.copy()
    x[:, 0, :] = level  # lead 0 is flat: its data range falls back to MIN_DATA_RANGE_MV
    y = x + noise * np.sin(np.arange(x.shape[-1]))
    assert np.all(np.isfinite(ssim_1d(x, y)))
    np.testing.assert_allclose(ssim_1d(x, x), 1.0, atol=1e-12)
    assert MIN_DATA_RANGE_MV > 0


def test_flat_everything_is_one():
    x = np.zeros((2, 3, 20))
    np.testing.assert_array_equal(ssim_1d(x, x), 1.0)


@pytest.mark.parametrize("win", [2, 4, 1, 0, -3, 9])
def test_invalid_windows_raise(win):
    x = np.zeros((1, 1, 8))
    with pytest.raises(ValueError, match=f"win={win}"):
        ssim_1d(x, x, win=win)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="batch, leads, time"):
        ssim_1d(np.zeros((1, 10)), np.zeros((1, 10)))
    with pytest.raises(ValueError, match="broadcast"):
        ssim_1d(np.zeros((2, 1, 10)), np.zeros((3, 1, 10)))


@pytest.mark.parametrize("win", [3, 7, 11])
def test_matches_skimage(win):
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(win)
    x = ecg_like()[:, :1]
    y = x + 0.08 * rng.standard_normal(x.shape)
    data_range = float(np.ptp(x[0, 0]))
    want = skimage_metrics.structural_similarity(
        x[0, 0], y[0, 0], data_range=data_range, win_size=win
    )
    np.testing.assert_allclose(ssim_1d(x, y, win=win), [want], rtol=0, atol=1e-6)


# ---- perturbation spectrum --------------------------------------------------------------------


def sine(f0: float, fs: float, n_time: int, amp: float = 0.05, phase: float = 0.0) -> np.ndarray:
    """A `(2, 3, T)` perturbation: the same sine on every record and lead."""
    t = np.arange(n_time) / fs
    return np.broadcast_to(amp * np.sin(2 * np.pi * f0 * t + phase), (2, 3, n_time)).copy()


@PROPS
@given(
    st.sampled_from([250.0, 360.0, 500.0]),
    st.floats(0.02, 0.47),
    st.floats(0.0, 2 * np.pi),
    st.floats(0.01, 0.5),
)
def test_sine_energy_sits_at_its_frequency(fs, rel_f0, phase, amp):
    n_time = int(10 * fs)
    f0 = max(3.0, rel_f0 * fs)
    freqs, psd = perturbation_psd(sine(f0, fs, n_time, amp, phase), fs)
    assert psd.shape == freqs.shape and np.all(psd >= 0)
    near = np.abs(freqs - f0) <= 2.0
    assert psd[near].sum() > 0.95 * psd.sum()
    # Parseval: the integrated density is the sine's mean power amp²/2 (mV²).
    df = freqs[1] - freqs[0]
    np.testing.assert_allclose(psd.sum() * df, amp**2 / 2, rtol=0.05)


@pytest.mark.parametrize("fs", [250.0, 500.0])
def test_energy_share_above_cutoff(fs):
    n_time = int(10 * fs)
    low = energy_share_above(*perturbation_psd(sine(2.0, fs, n_time), fs), 15.0)
    high = energy_share_above(*perturbation_psd(sine(40.0, fs, n_time), fs), 15.0)
    assert low < 0.01
    assert high > 0.95


def test_zero_delta_has_zero_share():
    freqs, psd = perturbation_psd(np.zeros((2, 3, 1000)), 250.0)
    assert np.all(psd == 0) and not np.any(np.isnan(psd))
    share = energy_share_above(freqs, psd, 15.0)
    assert share == 0.0 and isinstance(share, float)


def test_share_is_strictly_above_the_cutoff():
    freqs = np.array([0.0, 1.0, 2.0, 3.0])
    psd = np.array([1.0, 1.0, 1.0, 1.0])
    assert energy_share_above(freqs, psd, 2.0) == 0.25


def test_default_nperseg():
    assert default_nperseg(5000, 500.0) == 1000
    assert default_nperseg(3600, 360.0) == 720
    assert default_nperseg(20000, 1000.0) == 1024
    assert default_nperseg(300, 250.0) == 300
    freqs, _ = perturbation_psd(np.zeros((1, 1, 5000)), 500.0)
    assert freqs[1] - freqs[0] == pytest.approx(0.5)


def test_psd_rejects_bad_arguments():
    with pytest.raises(ValueError, match="fs=0"):
        perturbation_psd(np.zeros((1, 1, 100)), 0.0)
    with pytest.raises(ValueError, match="nperseg=200"):
        perturbation_psd(np.zeros((1, 1, 100)), 100.0, nperseg=200)
