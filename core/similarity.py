"""Signal-similarity measures of an adversarial ECG against its clean record (numpy/scipy only).

`ssim_1d` says how much of the clean waveform's local structure survives; `perturbation_psd` and
`energy_share_above` say where in frequency the perturbation's energy lies. Signals are
`(batch, leads, time)` arrays in millivolts.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

K1, K2 = 0.01, 0.03  # scikit-image's structural_similarity defaults
MIN_DATA_RANGE_MV = 1e-3  # 1 µV, about one ADC step: the data range given to a flat clean lead
MAX_NPERSEG = 1024


def _check_win(win: int, n_time: int) -> None:
    """Reject the windows scikit-image would reject (even, too small, longer than the signal)."""
    if isinstance(win, bool) or not isinstance(win, (int, np.integer)):
        raise ValueError(f"win={win!r} must be an odd integer ≥ 3")
    if win < 3 or win % 2 == 0:
        raise ValueError(f"win={win} must be an odd integer ≥ 3")
    if win > n_time:
        raise ValueError(f"win={win} exceeds the signal length time={n_time}")


def _ssim_per_lead(x: np.ndarray, y: np.ndarray, data_range: np.ndarray, win: int) -> np.ndarray:
    """Mean SSIM of each `(..., time)` row for a given data range `(...)`, as skimage computes it.

    Symmetric in `x` and `y`; `ssim_1d` wraps it with the clean lead's range.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    _check_win(win, x.shape[-1])
    c1 = (K1 * np.asarray(data_range, dtype=np.float64))[..., None] ** 2
    c2 = (K2 * np.asarray(data_range, dtype=np.float64))[..., None] ** 2
    cov_norm = win / (win - 1)  # sample covariance, skimage's use_sample_covariance=True

    def mean(a: np.ndarray) -> np.ndarray:
        return uniform_filter1d(a, size=win, axis=-1, mode="reflect")

    ux, uy = mean(x), mean(y)
    # (Co)variances are shift-invariant: centring each row first cuts the float cancellation in
    # E[x²] - E[x]², which would otherwise swamp a flat lead's tiny C2.
    xc, yc = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    uxc, uyc = mean(xc), mean(yc)
    vx = cov_norm * (mean(xc * xc) - uxc * uxc)
    vy = cov_norm * (mean(yc * yc) - uyc * uyc)
    vxy = cov_norm * (mean(xc * yc) - uxc * uyc)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    return s[..., pad : s.shape[-1] - pad].mean(axis=-1)


def ssim_1d(x: np.ndarray, y: np.ndarray, win: int = 7) -> np.ndarray:
    """Per-record SSIM `(batch,)` of `y` against the clean `x`, averaged over leads.

    Follows skimage's `structural_similarity` defaults (uniform window of `win` samples, sample
    covariance, K1=0.01, K2=0.03, (win-1)//2 border samples cropped). The data range L of each
    lead is the peak-to-peak of the clean lead `x`, floored at `MIN_DATA_RANGE_MV` (1 µV) so a
    flat clean lead stays finite: its C1, C2 stay well above float64 rounding of mV-scale
    variances. Inputs are `(batch, leads, time)`; `y` (or `x`) may broadcast, e.g. `(1, L, T)`.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 3 or y.ndim != 3:
        raise ValueError(
            f"x and y must be (batch, leads, time); got shapes {x.shape} and {y.shape}"
        )
    try:
        x, y = np.broadcast_arrays(x, y)
    except ValueError:
        raise ValueError(f"shapes x {x.shape} and y {y.shape} do not broadcast") from None
    _check_win(win, x.shape[-1])
    data_range = np.maximum(np.ptp(x, axis=-1), MIN_DATA_RANGE_MV)
    return _ssim_per_lead(x, y, data_range, win).mean(axis=-1)


def default_nperseg(n_time: int, fs: float) -> int:
    """Welch segment length: 2 s of samples (0.5 Hz bins), at most 1024 and at most the signal."""
    return int(max(1, min(n_time, round(2 * fs), MAX_NPERSEG)))


def perturbation_psd(
    delta: np.ndarray, fs: float, nperseg: int | None = None, average: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD (Hann, density scaling) of the perturbation, averaged over records and leads
    (`average=False`: one row per record and lead, to average over several calls).

    Returns `(freqs in Hz, psd in mV²/Hz)`. No detrending, so a DC offset in the perturbation
    counts as low-frequency energy; `nperseg` defaults to `default_nperseg(time, fs)`.
    """
    delta = np.asarray(delta, dtype=np.float64)
    if delta.ndim < 1 or delta.shape[-1] < 1:
        raise ValueError(f"delta must have a non-empty last (time) axis; got shape {delta.shape}")
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"fs={fs} must be a positive sampling rate in Hz")
    n_time = delta.shape[-1]
    if nperseg is None:
        nperseg = default_nperseg(n_time, fs)
    elif not 1 <= nperseg <= n_time:
        raise ValueError(f"nperseg={nperseg} must lie in [1, time={n_time}]")
    from scipy.signal import welch  # 0.8 s to import: only when measuring

    freqs, psd = welch(
        delta, fs=fs, window="hann", nperseg=nperseg, detrend=False, scaling="density", axis=-1
    )
    psd = psd.reshape(-1, psd.shape[-1])
    return freqs, (psd.mean(axis=0) if average else psd)


def energy_share_above(freqs: np.ndarray, psd: np.ndarray, cutoff_hz: float) -> float:
    """Share of the PSD's energy in bins strictly above `cutoff_hz` (0.0 when there is none).

    Welch bins are evenly spaced, so plain sums stand in for the integrals.
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    psd = np.asarray(psd, dtype=np.float64)
    if freqs.shape != psd.shape or freqs.ndim != 1:
        raise ValueError(f"freqs {freqs.shape} and psd {psd.shape} must be equal 1-D shapes")
    total = float(psd.sum())
    if total <= 0:
        return 0.0
    return float(psd[freqs > cutoff_hz].sum() / total)
