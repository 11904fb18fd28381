"""`ecgarena.highpass` and `ecgarena.bandpass`: a sinusoid in the pass band keeps its amplitude
and phase away from the record's ends, one in the stop band is attenuated, gradients flow, and a
bad cut-off is a UserError naming it."""

from __future__ import annotations

import math
from collections.abc import Callable

import ecgarena
import pytest
import torch
from ecgarena import UserError, bandpass, highpass
from ecgarena.testing import signals
from hypothesis import given, settings
from hypothesis import strategies as st

RATES = st.sampled_from([100.0, 250.0, 500.0])
SECONDS = 10


def sine(fs: float, hz: float, phase: float) -> torch.Tensor:
    """A unit sinusoid of `SECONDS` s at `fs`, shaped (1, 1, time), float32."""
    t = torch.arange(int(SECONDS * fs), dtype=torch.float64) / fs
    return torch.sin(2 * math.pi * hz * t + phase).view(1, 1, -1).float()


def middle(x: torch.Tensor) -> torch.Tensor:
    """The central half of the record (away from the ends' mirror-extension transients)."""
    n = x.shape[-1]
    return x[..., n // 4 : 3 * n // 4]


@settings(max_examples=40, deadline=None)
@given(
    fs=RATES,
    cutoff=st.floats(0.5, 5.0),
    passed=st.floats(2.0, 0.4 * 100 / 5.0),  # as a multiple of the cut-off (≤ 0.4 fs at 100 Hz)
    stopped=st.floats(0.25, 0.5),
    phase=st.floats(0, 2 * math.pi),
)
def test_highpass_keeps_the_pass_band_in_phase_and_attenuates_the_stop_band(
    fs: float, cutoff: float, passed: float, stopped: float, phase: float
) -> None:
    x = sine(fs, passed * cutoff, phase)
    y = highpass(x, fs, cutoff)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(middle(y - x).abs().max()) <= 0.1  # ≥ 0.9 of the amplitude, zero phase
    assert float(middle(highpass(sine(fs, stopped * cutoff, phase), fs, cutoff)).abs().max()) < 0.1


@settings(max_examples=40, deadline=None)
@given(
    fs=RATES,
    low=st.floats(0.5, 2.0),
    width=st.floats(4.0, 10.0),
    where=st.floats(0, 1),
    phase=st.floats(0, 2 * math.pi),
)
def test_bandpass_keeps_the_pass_band_and_attenuates_both_stop_bands(
    fs: float, low: float, width: float, where: float, phase: float
) -> None:
    high = low * width
    inside = 2 * low + where * (high / 2 - 2 * low)
    x = sine(fs, inside, phase)
    assert float(middle(bandpass(x, fs, low, high) - x).abs().max()) <= 0.1
    for outside in (low / 2 * (0.5 + where / 2), 2 * high + where * (0.45 * fs - 2 * high)):
        y = bandpass(sine(fs, outside, phase), fs, low, high)
        assert float(middle(y).abs().max()) < 0.1, outside


@settings(max_examples=20, deadline=None)
@given(x=signals(batch=2, leads=3, time=200), fs=RATES)
def test_gradients_flow_through_both_filters_and_the_input_is_left_alone(
    x: torch.Tensor, fs: float
) -> None:
    before = x.clone()
    for f in (lambda v: highpass(v, fs, 0.5), lambda v: bandpass(v, fs, 0.5, 0.4 * fs)):
        xg = x.clone().requires_grad_(True)
        f(xg).square().sum().backward()
        assert torch.isfinite(xg.grad).all() and xg.grad.abs().max() > 0
    assert torch.equal(x, before)


def test_the_filters_gradient_is_exact() -> None:
    x = torch.randn(1, 2, 40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: bandpass(v, 100.0, 2.0, 30.0), (x,))
    assert torch.autograd.gradcheck(lambda v: highpass(v, 100.0, 1.0, order=2), (x,))


def test_highpass_removes_baseline_offset_and_wander() -> None:
    drift = 2.0 + sine(500.0, 0.1, 0.0)  # a 2 mV offset and 0.1 Hz wander
    ecg = sine(500.0, 10.0, 0.3)
    y = highpass(drift + ecg, 500.0, 0.5)
    assert float(middle(y - ecg).abs().max()) < 0.05


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: highpass(x, 100.0, 50.0), "high-pass cut-off 50 Hz .* Nyquist frequency 50 Hz"),
        (lambda x: highpass(x, 100.0, 0.0), "high-pass cut-off 0 Hz must lie between 0"),
        (lambda x: bandpass(x, 100.0, 0.5, 60.0), "band-pass high cut-off 60 Hz .* Nyquist"),
        (lambda x: bandpass(x, 100.0, -1.0, 40.0), "band-pass low cut-off -1 Hz"),
        (lambda x: bandpass(x, 100.0, 20.0, 5.0), "low cut-off 20 Hz must be below .* 5 Hz"),
    ],
)
def test_a_bad_cutoff_is_a_user_error_naming_it(
    call: Callable[[torch.Tensor], torch.Tensor], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        call(torch.zeros(1, 1, 100))


def test_a_bad_order_names_it() -> None:
    with pytest.raises(ValueError, match="order must be an integer ≥ 1, got 0"):
        highpass(torch.zeros(1, 1, 100), 100.0, 1.0, order=0)


def test_the_filters_are_public() -> None:
    assert {"bandpass", "highpass"} <= set(ecgarena.__all__)
    assert ecgarena.highpass is highpass and ecgarena.bandpass is bandpass
