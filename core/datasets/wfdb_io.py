"""Reading one WFDB record with `wfdb`, turning every failure into an error naming the record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from ..errors import DataError

RECORD_LINE = "NAME NSIG FS NSAMP, e.g. 00001_lr 12 100 1000"
SIGNAL_LINE = "9 fields FILE FORMAT GAIN RES ZERO INIT CHECKSUM BLOCK NAME"


def _is_number(text: str) -> bool:
    """Whether `text` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_header(path: Path) -> None:
    """Refuse a WFDB header `path.hea` with a missing or blank field (`wfdb` would silently
    shift the fields after it) or fewer or more signal lines than it declares."""
    hea = path.with_name(path.name + ".hea")
    try:
        text = hea.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"header {hea}: cannot be read ({type(e).__name__}: {e})") from None
    lines = [
        ln.split() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise DataError(f"header {hea} is empty (valid: a record line {RECORD_LINE})")
    rec = lines[0]
    if len(rec) < 4 or not (
        rec[1].isdigit() and _is_number(rec[2].split("/")[0]) and rec[3].isdigit()
    ):
        raise DataError(
            f"header {hea}: record line {' '.join(rec)!r} lacks a field (valid: {RECORD_LINE})"
        )
    if len(lines) - 1 != int(rec[1]):
        raise DataError(
            f"header {hea}: {len(lines) - 1} signal lines, the record line declares {rec[1]} "
            "(valid: one line per signal)"
        )
    for sig in lines[1:]:
        if len(sig) < 9:
            raise DataError(
                f"header {hea}: signal line {' '.join(sig)!r} has {len(sig)} fields "
                f"(valid: {SIGNAL_LINE})"
            )


def read_physical(path: Path) -> tuple[np.ndarray, dict]:
    """A record's physical signal as float `(leads, time)` in mV and its header fields
    (`fs`, `sig_name`, `comments`, ...), every read failure, non-mV unit or NaN a DataError."""
    check_header(path)
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
