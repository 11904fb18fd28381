"""Band-limiting and smoothing of signals, perturbations and update directions, in one place.

`lowpass` acts on detached tensors (an attack's update direction or a finished perturbation),
so it need not be differentiable: the Butterworth runs in scipy, zero-phase (`sosfiltfilt`),
because a causal filter would shift the update ~30 ms away from the QRS that produced it.
`highpass` and `bandpass` are differentiable torch (inside a classifier or an attack's graph):
the same zero-phase squared Butterworth magnitude, applied in the frequency domain.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UserError


def _nyquist_check(kind: str, cutoff_hz: float, fs: float) -> None:
    """Raise a UserError naming `cutoff_hz` unless it lies strictly inside (0, fs/2)."""
    if not 0 < cutoff_hz < fs / 2:
        raise UserError(
            f"{kind} cut-off {cutoff_hz:g} Hz must lie between 0 and the Nyquist "
            f"frequency {fs / 2:g} Hz of this dataset"
        )


def lowpass(x: torch.Tensor, fs: float, cutoff_hz: float, order: int = 4) -> torch.Tensor:
    """Zero-phase Butterworth low-pass along time (|H|² of an `order` filter); a new tensor."""
    _nyquist_check("low-pass", cutoff_hz, fs)
    from scipy.signal import butter, sosfiltfilt  # 0.8 s to import: only when filtering

    sos = butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    data = x.detach().to("cpu", torch.float64).numpy()
    # Even (mirror) extension over ~3 cut-off periods: scipy's default odd extension of 15
    # samples pins each output end to the raw input's end value, an unfiltered spike.
    padlen = min(int(3 * fs / cutoff_hz), data.shape[-1] - 1)
    out = sosfiltfilt(sos, data, axis=-1, padtype="even", padlen=padlen)
    return torch.from_numpy(np.ascontiguousarray(out)).to(x.device, x.dtype)


def _butterworth_power(
    x: torch.Tensor, fs: float, low_hz: float | None, high_hz: float | None, order: int
) -> torch.Tensor:
    """Filter along time by |H|² of a digital Butterworth high-pass at `low_hz` cascaded with a
    low-pass at `high_hz` (None: that side open), zero phase, via the FFT of an even extension."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"Butterworth order must be an integer ≥ 1, got {order!r}")
    work = x if x.dtype == torch.float64 else x.float()
    slowest = min(c for c in (low_hz, high_hz) if c is not None)
    # Mirror over ~3 periods of the slowest cut-off, as `lowpass`: the FFT's circular wrap then
    # joins the extension's ends, not the record's.
    pad = min(int(3 * fs / slowest), x.shape[-1] - 1)
    padded = F.pad(work, (pad, pad), mode="reflect") if pad > 0 else work
    n = padded.shape[-1]
    # Bilinear-transform frequency axis: tan(πf/fs) / tan(πf_c/fs) is the digital Butterworth's.
    warped = torch.tan(torch.pi * torch.fft.rfftfreq(n, 1 / fs, dtype=torch.float64) / fs)
    gain = torch.ones_like(warped)
    if high_hz is not None:
        gain = gain / (1 + (warped / math.tan(math.pi * high_hz / fs)) ** (2 * order))
    if low_hz is not None:
        ratio = math.tan(math.pi * low_hz / fs) / warped.clamp_min(torch.finfo(torch.float64).tiny)
        gain = gain / (1 + ratio ** (2 * order))
    spectrum = torch.fft.rfft(padded, dim=-1) * gain.to(padded.device, padded.dtype)
    out = torch.fft.irfft(spectrum, n=n, dim=-1)[..., pad : pad + x.shape[-1]]
    return out.to(x.dtype)


def highpass(x: torch.Tensor, fs: float, cutoff_hz: float, order: int = 4) -> torch.Tensor:
    """Differentiable zero-phase Butterworth high-pass along time (|H|² of an `order` filter,
    as `lowpass`); e.g. baseline-wander removal at 0.5 Hz. A new tensor of x's shape."""
    _nyquist_check("high-pass", cutoff_hz, fs)
    return _butterworth_power(x, fs, cutoff_hz, None, order)


def bandpass(
    x: torch.Tensor, fs: float, low_hz: float, high_hz: float, order: int = 4
) -> torch.Tensor:
    """Differentiable zero-phase band-pass along time: the `highpass` at `low_hz` times the
    low-pass at `high_hz` (each |H|² of an `order` Butterworth). A new tensor of x's shape."""
    _nyquist_check("band-pass low", low_hz, fs)
    _nyquist_check("band-pass high", high_hz, fs)
    if low_hz >= high_hz:
        raise UserError(
            f"band-pass low cut-off {low_hz:g} Hz must be below its high cut-off {high_hz:g} Hz"
        )
    return _butterworth_power(x, fs, low_hz, high_hz, order)


def gaussian_kernel(window: int, sigma: float) -> torch.Tensor:
    """A symmetric Gaussian of odd length `window`, normalised to unit sum."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"Gaussian window must be an odd number of samples ≥ 1, got {window}")
    if sigma <= 0:
        raise ValueError(f"Gaussian sigma must be > 0 samples, got {sigma}")
    i = torch.arange(window, dtype=torch.float64) - window // 2
    w = torch.exp(-(i**2) / (2 * sigma**2))
    return w / w.sum()


def samples(ms: float, fs: float, odd: bool = True, minimum: int = 1) -> int:
    """A duration in ms as a whole number of samples at `fs` (rounded to odd when asked)."""
    n = max(minimum, int(round(ms * fs / 1000)))
    return n + 1 if odd and n % 2 == 0 else n


def smooth(x: torch.Tensor, kernel: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Convolve every lead with the same symmetric kernel (depthwise), 'same' length.

    `padding` is "reflect" (a smoothed update keeps its level at the ends) or "zeros" (SAP's
    reference: the signal is 0 outside the record, so ‖S(θ)‖∞ ≤ ‖θ‖∞ for a unit-sum kernel).
    """
    k = kernel.to(x.device, x.dtype)
    pad = len(k) // 2
    if pad == 0:
        return x * k[0]
    leads = x.shape[1]
    weight = k.view(1, 1, -1).expand(leads, 1, len(k))
    if padding == "zeros":
        return F.conv1d(x, weight, padding=pad, groups=leads)
    mode = "reflect" if x.shape[-1] > pad else "replicate"
    return F.conv1d(F.pad(x, (pad, pad), mode=mode), weight, groups=leads)
