"""Reading one WFDB record with `wfdb`, turning every failure into an error naming the record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..errors import DataError


def read_record(path: Path, fs: float, n_leads: int, n_samples: int) -> np.ndarray:
    """The record's physical signal as float32 `(leads, time)` in mV, validated."""
    try:
        signal, fields = wfdb.rdsamp(str(path))
    except Exception as e:  # wfdb raises many types for corrupt headers/data
        raise DataError(f"record {path}: cannot be read ({type(e).__name__}: {e})") from None
    if signal.shape != (n_samples, n_leads):
        raise DataError(
            f"record {path}: expected {n_samples} samples × {n_leads} leads, got "
            f"{signal.shape[0]} × {signal.shape[1]} (truncated or wrong record?)"
        )
    if fields["fs"] != fs:
        raise DataError(f"record {path}: sampling rate {fields['fs']} Hz, expected {fs} Hz")
    units = {u.lower() for u in fields["units"]}
    if units != {"mv"}:
        raise DataError(f"record {path}: units {sorted(units)}, expected mV")
    if not np.isfinite(signal).all():
        raise DataError(f"record {path}: contains NaN/inf samples (corrupt or missing data)")
    return signal.T.astype(np.float32)
