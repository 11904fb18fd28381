"""The physiological mask M of CPR (METHODS.md §9): P, QRS and ST-T windows around R peaks.

R peaks come from `wfdb.processing.xqrs_detect` on lead II (resampled to 250 Hz when the rate
is lower, where XQRS is unreliable), with a band-pass/derivative `find_peaks` fallback. Windows
relative to each R peak: P −250…−80 ms, QRS −50…+50 ms, ST-T +50…+400 ms scaled by √(RR/1 s);
P and ST-T stop at the midpoint to the neighbouring beat, the QRS window is always kept. M is
shared across leads; with no peaks M = 1 (no prior).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import wfdb.processing
from ecgarena import progress
from scipy.signal import butter, find_peaks, resample_poly, sosfiltfilt

DETECT_FS = 250


def r_peaks(signal_mv: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of one lead (at `fs`), sorted and unique."""
    sig = np.asarray(signal_mv, dtype=np.float64)
    if not np.isfinite(sig).all() or np.ptp(sig) == 0:
        return np.zeros(0, dtype=np.int64)
    up = fs < DETECT_FS
    work, work_fs = (resample_poly(sig, DETECT_FS, int(round(fs))), DETECT_FS) if up else (sig, fs)
    try:
        peaks = wfdb.processing.xqrs_detect(work, fs=work_fs, verbose=False)
    except Exception:  # XQRS raises on some flat or very short signals: use the fallback
        peaks = np.zeros(0, dtype=np.int64)
    if len(peaks) < 2:
        peaks = fallback_peaks(work, work_fs)
    scaled = np.round(np.asarray(peaks) * fs / work_fs).astype(np.int64)
    return np.unique(np.clip(scaled, 0, len(sig) - 1))


def fallback_peaks(sig: np.ndarray, fs: float) -> np.ndarray:
    """Peaks of the squared derivative of a 5–15 Hz band-pass, ≥ 250 ms apart."""
    if len(sig) < 3 * int(fs * 0.25) or fs <= 30:
        return np.zeros(0, dtype=np.int64)
    band = sosfiltfilt(butter(2, [5, 15], btype="band", fs=fs, output="sos"), sig)
    energy = np.diff(band, prepend=band[0]) ** 2
    height = np.percentile(energy, 98) * 0.3
    peaks, _ = find_peaks(energy, distance=int(0.25 * fs), height=height)
    return peaks


def physiological_mask(n_samples: int, fs: float, peaks: np.ndarray) -> np.ndarray:
    """The binary mask `(n_samples,)` of P, QRS and ST-T windows around `peaks`."""
    if len(peaks) == 0:
        return np.ones(n_samples, dtype=np.float32)
    mask = np.zeros(n_samples, dtype=np.float32)
    ms = fs / 1000.0
    rr = np.diff(peaks) / fs if len(peaks) > 1 else np.array([1.0])
    for i, r in enumerate(peaks):
        prev_gap = (r - peaks[i - 1]) if i > 0 else None
        next_gap = (peaks[i + 1] - r) if i + 1 < len(peaks) else None
        rr_here = rr[min(i, len(rr) - 1)]
        lo_limit = r - prev_gap // 2 if prev_gap else 0
        hi_limit = r + next_gap // 2 if next_gap else n_samples
        p_lo, p_hi = r - int(round(250 * ms)), r - int(round(80 * ms))
        st_lo = r + int(round(50 * ms))
        st_hi = r + int(round(400 * ms * math.sqrt(max(rr_here, 0.2))))
        for lo, hi in ((max(p_lo, lo_limit), p_hi), (st_lo, min(st_hi, hi_limit))):
            mask[max(lo, 0) : max(min(hi + 1, n_samples), 0)] = 1.0
        q_lo, q_hi = r - int(math.ceil(50 * ms)), r + int(math.ceil(50 * ms))
        mask[max(q_lo, 0) : min(q_hi + 1, n_samples)] = 1.0
    return mask


def reference_lead(leads: tuple[str, ...]) -> int:
    """Lead II where present (the standard rhythm lead), else the first lead."""
    names = [lead.upper() for lead in leads]
    return names.index("II") if "II" in names else 0


def masks_for(
    x: np.ndarray, leads: tuple[str, ...], fs: float, cache_dir: Path | None
) -> np.ndarray:
    """Masks `(n, 1, T)` of every record, computed once and cached by a hash of the records."""
    lead = reference_lead(leads)
    digest = hashlib.sha256(f"{x.shape}{fs}{lead}".encode())
    for i in range(len(x)):
        digest.update(np.ascontiguousarray(x[i, lead]).tobytes())
    path = Path(cache_dir) / "cpr-masks" / f"{digest.hexdigest()[:24]}.npy" if cache_dir else None
    if path is not None and path.exists():
        return np.load(path)
    out = np.empty((len(x), 1, x.shape[-1]), dtype=np.float32)
    with progress() as bar:
        task = bar.add_task("R peaks → physiological masks", total=len(x), info="")
        for i in range(len(x)):
            out[i, 0] = physiological_mask(x.shape[-1], fs, r_peaks(x[i, lead], fs))
            bar.advance(task)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(path)
    return out
