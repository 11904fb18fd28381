"""PhysioNet/CinC Challenge 2017: single-lead AliveCor ECG at 300 Hz, classes N, A, O, ~.

Source layout: `RECORDS` (record names), `REFERENCE.csv` (`name,label`), and per record a
WFDB header `NAME.hea` plus `NAME.mat` holding `val` (int16, 1 × n). The headers write the
base date before the base time (`A00001 1 300 9000 2014-05-08 05:05:15`), which
`wfdb.rdrecord` rejects, so the header is parsed here and the `.mat` read with scipy.
Physical value = (val − baseline) / gain; with the usual `1000/mV` gain the integers are µV
and the loader returns mV.

Fixed length (as Han et al.'s ADV_ECG `create_data` with `preprocess='zero'`, `padding='two'`,
reused by DNA_ECG): records longer than `length_s` keep their first `length_s·300` samples;
shorter ones are zero-padded on both sides, ⌊r/2⌋ zeros before and ⌈r/2⌉ after (r = missing
samples). `pad="end"` puts all zeros after the signal instead. Default 60 s = 18 000 samples.

Split: the public folder may be the 300-record validation set only, so records are split
per class with a seeded shuffle (default 70/10/20 train/val/test), never by the source.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.io
from pydantic import Field

from ..errors import DataError
from ..progress import progress
from ..protocols import DatasetInfo, Split
from .base import CachedDataset
from .cache import fingerprint
from .csvfile import read_rows
from .framing import FramedSplits, fit_length

CLASSES = ("N", "A", "O", "~")
FS = 300
_GAIN = re.compile(r"^([0-9.eE+-]+)(?:\(([-+]?\d+)\))?(?:/(\S+))?$")
_UNITS = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3}


def parse_header(path: Path, record: str) -> dict[str, Any]:
    """The fields of a single-signal WFDB header needed to scale its `.mat` to mV.

    Tolerates any base time/date (the CinC 2017 headers have them in the wrong order).
    """
    try:
        lines = [
            ln.strip()
            for ln in path.read_text(errors="strict").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")
        ]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"header {path}: cannot be read ({type(e).__name__}: {e})") from None
    if len(lines) < 2:
        raise DataError(f"header {path}: needs a record line and a signal line, got {len(lines)}")
    rec = lines[0].split()
    sig = lines[1].split()
    try:
        if rec[0].split("/")[0] != record:
            raise DataError(f"header {path}: record name {rec[0]!r}, expected {record!r}")
        n_sig, fs, n_samples = int(rec[1]), float(rec[2].split("/")[0]), int(rec[3])
    except (IndexError, ValueError):
        raise DataError(
            f"header {path}: bad record line {lines[0]!r} (valid: NAME NSIG FS NSAMP ...)"
        ) from None
    if n_sig != 1:
        raise DataError(f"header {path}: {n_sig} signals, expected 1 (single-lead AliveCor)")
    if fs != FS:
        raise DataError(f"header {path}: sampling rate {fs:g} Hz, expected {FS} Hz")
    if len(sig) < 3 or sig[0] != f"{record}.mat" or not sig[1].startswith("16"):
        raise DataError(
            f"header {path}: bad signal line {lines[1]!r} (valid: {record}.mat 16+24 1000/mV ...)"
        )
    m = _GAIN.match(sig[2])
    adc_zero = sig[4] if len(sig) > 4 else "0"
    units = (m.group(3) if m and m.group(3) else "mV").lower()
    try:
        gain = float(m.group(1)) if m else float("nan")
        baseline = int(m.group(2)) if m and m.group(2) is not None else int(adc_zero)
    except ValueError:
        gain, baseline = float("nan"), 0
    if not (np.isfinite(gain) and gain > 0) or units not in _UNITS:
        raise DataError(
            f"header {path}: bad gain field {sig[2]!r} (valid: a positive gain with optional "
            "(baseline) and units mV or uV, e.g. 1000/mV)"
        )
    return {
        "n_samples": n_samples,
        "gain": gain,
        "baseline": baseline,
        "to_mv": _UNITS[units] / gain,
        "units": units,
    }


def read_mat_record(root: Path, record: str) -> np.ndarray:
    """One record as float32 `(1, n)` in mV, checked against its header."""
    head = parse_header(root / f"{record}.hea", record)
    path = root / f"{record}.mat"
    try:
        val = scipy.io.loadmat(str(path))["val"]
    except KeyError:
        raise DataError(f"record {path}: no variable 'val' (valid: WFDB .mat with val)") from None
    except Exception as e:  # scipy raises many types for truncated/corrupt files
        raise DataError(f"record {path}: cannot be read ({type(e).__name__}: {e})") from None
    val = np.asarray(val)
    if val.ndim != 2 or val.shape[0] != 1 or not np.issubdtype(val.dtype, np.number):
        raise DataError(f"record {path}: 'val' has shape {val.shape}, expected 1 × n numbers")
    if val.shape[1] != head["n_samples"]:
        raise DataError(
            f"record {path}: header says {head['n_samples']} samples, the .mat holds "
            f"{val.shape[1]} (truncated or wrong file?)"
        )
    if not np.isfinite(val).all():
        raise DataError(f"record {path}: contains NaN/inf samples (corrupt data)")
    return ((val.astype(np.float64) - head["baseline"]) * head["to_mv"]).astype(np.float32)


def read_reference(path: Path, classes: tuple[str, ...]) -> dict[str, str]:
    """`REFERENCE.csv` rows `name,label` as a dict, labels checked against `classes`."""
    valid = f"one 'name,label' row per record, labels {', '.join(classes)}"
    out: dict[str, str] = {}
    for line, row in read_rows(path):
        name, label = row[0].strip(), row[1].strip() if len(row) > 1 else ""
        if not name:
            raise DataError(f"{path} line {line}: the record name is blank (valid: {valid})")
        if label not in classes:
            raise DataError(
                f"{path} line {line}: label {label!r} of {name} is unknown "
                f"(valid: {', '.join(classes)})"
            )
        out[name] = label
    if not out:
        raise DataError(f"{path} has no records (valid: {valid})")
    return out


class CinC2017Dataset(FramedSplits, CachedDataset):
    """CinC 2017 single-lead 300 Hz records, fixed length, multiclass N/A/O/~, in mV."""

    name: ClassVar[str] = "cinc2017"
    fs: ClassVar[float] = FS
    marker: ClassVar[str] = "REFERENCE.csv"
    length_s: float = Field(60.0, gt=0, le=120, description="fixed record length (crop/pad)")

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, "multiclass", CLASSES, ("ECG",), float(FS), self.n_samples)

    def records(self) -> list[str]:
        """Record names from `RECORDS` (else the rows of `REFERENCE.csv`)."""
        root = self.folder()
        if not (root / "RECORDS").exists():
            return list(read_reference(root / "REFERENCE.csv", CLASSES))
        try:
            names = (root / "RECORDS").read_text().split()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(
                f"{root / 'RECORDS'}: cannot be read ({type(e).__name__}: {e})"
            ) from None
        if not names:
            raise DataError(f"{root / 'RECORDS'} lists no records (valid: one name a line)")
        return names

    def cache_parts(self) -> dict[str, Any]:
        root = self.folder()
        names = self.records()
        files = [root / "REFERENCE.csv"] + [
            root / f"{r}{e}" for r in names for e in (".hea", ".mat")
        ]
        if (root / "RECORDS").exists():
            files.append(root / "RECORDS")
        missing = [f for f in files if not f.exists()]
        if missing:
            raise DataError(
                f"CinC 2017 file {missing[0]} is missing ({len(missing)} files missing)"
            )
        return {**super().cache_parts(), "sources": fingerprint(root, files)}

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        root = self.folder()
        names = self.records()
        labels = read_reference(root / "REFERENCE.csv", CLASSES)
        unlabelled = [r for r in names if r not in labels]
        if unlabelled:
            raise DataError(
                f"{root / 'REFERENCE.csv'}: record {unlabelled[0]} has no label "
                f"({len(unlabelled)} records of RECORDS missing)"
            )
        xs, lengths = [], []
        with progress() as bar:
            task = bar.add_task("decode CinC 2017", total=len(names), info="")
            for r in names:
                sig = read_mat_record(root, r)
                lengths.append(sig.shape[1])
                xs.append(fit_length(sig, self.n_samples, self.pad))
                bar.advance(task)
        x = np.stack(xs)
        y = np.array([CLASSES.index(labels[r]) for r in names], np.int64)
        ids = np.array(names)
        idx = self.split(y)
        splits = {s: Split(x[i], y[i], ids[i].tolist()) for s, i in idx.items()}
        describe = {
            "records": len(names),
            "class_counts": {c: int(v) for c, v in zip(CLASSES, np.bincount(y, minlength=4))},
            "units": "mV (val − baseline) / gain from each .hea",
            **self.framing(lengths),
            "split_rule": f"stratified per class {self.train:g}/{self.val:g}/{self.test:g}, seed {self.seed}",
            "split_sizes": {s: len(i) for s, i in idx.items()},
            "split_class_counts": {
                s: {c: int(v) for c, v in zip(CLASSES, np.bincount(y[i], minlength=4))}
                for s, i in idx.items()
            },
        }
        return splits, describe
