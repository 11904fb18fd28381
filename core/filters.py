"""Band-limiting and smoothing of perturbations and update directions, in one place.

These act on detached tensors (an attack's update direction or a finished perturbation), so
they need not be differentiable: the Butterworth runs in scipy, zero-phase (`sosfiltfilt`),
because a causal filter would shift the update ~30 ms away from the QRS that produced it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UserError


def lowpass(x: torch.Tensor, fs: float, cutoff_hz: float, order: int = 4) -> torch.Tensor:
    """Zero-phase Butterworth low-pass along time (|H|² of an `order` filter); a new tensor."""
    if not 0 < cutoff_hz < fs / 2:
        raise UserError(
            f"low-pass cut-off {cutoff_hz:g} Hz must lie between 0 and the Nyquist "
            f"frequency {fs / 2:g} Hz of this dataset"
        )
    from scipy.signal import butter, sosfiltfilt  # 0.8 s to import: only when filtering

    sos = butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    data = x.detach().to("cpu", torch.float64).numpy()
    # Even (mirror) extension over ~3 cut-off periods: scipy's default odd extension of 15
    # samples pins each output end to the raw input's end value, an unfiltered spike.
    padlen = min(int(3 * fs / cutoff_hz), data.shape[-1] - 1)
    out = sosfiltfilt(sos, data, axis=-1, padtype="even", padlen=padlen)
    return torch.from_numpy(np.ascontiguousarray(out)).to(x.device, x.dtype)


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
