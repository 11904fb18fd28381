"""Reading one WFDB record with `wfdb`, turning every failure into an error naming the record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..errors import DataError


def read_physical(path: Path) -> tuple[np.ndarray, dict]:
    """A record's physical signal as float `(leads, time)` in mV and its header fields
    (`fs`, `sig_name`, `comments`, ...), every read failure, non-mV unit or NaN a DataError."""
    try:
        signal, fields = wfdb.rdsamp(str(path))
    except Exception as e:  # wfdb raises many types for corrupt headers/data
        raise DataError(f"record {path}: cannot be read ({type(e).__name__}: {e})") from None
    units = {u.lower() for u in fields["units"]}
    if units != {"mv"}:
        raise DataError(f"record {path}: units {sorted(units)}, expected mV")
    if not np.isfinite(signal).all():
        raise DataError(f"record {path}: contains NaN/inf samples (corrupt or missing data)")
    return signal.T, fields


def read_record(path: Path, fs: float, n_leads: int, n_samples: int) -> np.ndarray:
    """The record's physical signal as float32 `(leads, time)` in mV, of the expected shape."""
    signal, fields = read_physical(path)
    if signal.shape != (n_leads, n_samples):
        raise DataError(
            f"record {path}: expected {n_samples} samples × {n_leads} leads, got "
            f"{signal.shape[1]} × {signal.shape[0]} (truncated or wrong record?)"
        )
    if fields["fs"] != fs:
        raise DataError(f"record {path}: sampling rate {fields['fs']} Hz, expected {fs} Hz")
    return signal.astype(np.float32)
