"""MIT-BIH heartbeats as in Kachuee et al. 2018 / Kaggle "ECG Heartbeat Categorization".

From WFDB records (default): one lead (MLII) in mV is resampled 360 → 125 Hz
(`scipy.signal.resample_poly`, 25/72) and every annotated beat with an AAMI class gives one
187-sample (1.496 s) window that **starts at the annotated R peak**. With `segment="rr"`
(default, Kachuee's step 6–7) the window keeps 1.2·T samples after the peak, T being the
median R–R interval of the annotated beats in the beat's 10 s block (the whole record's
median when the block has fewer than two beats), and the rest is zeros; `segment="fixed"`
keeps all 187 samples. Differences from Kachuee: annotated R peaks instead of detected ones,
values stay in mV (Kachuee min–max normalises each 10 s block to [0, 1]), and beats whose
window runs past the record's end are dropped. Classes are the AAMI N, S, V, F, Q of
`mitdb.AAMI`; the split is `mitdb`'s (inter-patient DS1/DS2, else by time 70/10/20).

From the Kaggle CSVs (`mitbih_train.csv` and `mitbih_test.csv` in the data folder, used
automatically when present, or with `source="csv"`): each row is 187 values and a label
0–4 (= N, S, V, F, Q). The values are min–max normalised to [0, 1], **not mV**, as
`describe()` says. `mitbih_test.csv` is the test split; a seeded per-class `csv_val` share
of `mitbih_train.csv` validates.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from scipy.signal import resample_poly

from ..errors import DataError
from ..protocols import DatasetInfo, Split
from .cache import fingerprint
from .csvfile import read_rows
from .framing import stratified_split
from .mitdb import AAMI, CLASSES, FS, MITDBRecords, read_annotated, split_beats, split_counts

FS_OUT = 125
WINDOW = 187
BLOCK_S = 10
CSV_FILES = ("mitbih_train.csv", "mitbih_test.csv")


def kachuee_beats(
    path: Path, lead: str, segment: Literal["rr", "fixed"]
) -> tuple[np.ndarray, list[str], str]:
    """Windows `(n, 1, 187)` in mV at 125 Hz starting at each annotated R peak, AAMI classes."""
    sig, samples, symbols, used = read_annotated(path, lead)
    x = resample_poly(sig, FS_OUT // 5, FS // 5)  # 360 → 125 Hz (25/72)
    beats = [
        (int(round(s * FS_OUT / FS)), AAMI[sym]) for s, sym in zip(samples, symbols) if sym in AAMI
    ]
    peaks = np.array([p for p, _ in beats])
    overall = float(np.median(np.diff(peaks))) if len(peaks) > 1 else WINDOW / 1.2
    block = peaks // (BLOCK_S * FS_OUT)
    period = {}
    for b in np.unique(block):
        ps = peaks[block == b]
        period[int(b)] = float(np.median(np.diff(ps))) if len(ps) > 1 else overall
    windows, classes = [], []
    for (p, c), b in zip(beats, block):
        n = WINDOW if segment == "fixed" else min(WINDOW, round(1.2 * period[int(b)]))
        if p < 0 or p + n > len(x):
            continue
        w = np.zeros(WINDOW, np.float32)
        w[:n] = x[p : p + n]
        windows.append(w)
        classes.append(c)
    if not windows:
        raise DataError(f"MIT-BIH record {path}: no annotated beat fits a {WINDOW}-sample window")
    return np.stack(windows)[:, None, :], classes, used


def _first_bad_cell(path: Path) -> str:
    """Where a Kaggle heartbeat CSV stops being 188 numbers a row (for the error message)."""
    for line, row in read_rows(path):
        if len(row) != WINDOW + 1:
            return f"line {line}: {len(row)} columns, expected {WINDOW} values + 1 label"
        for col, cell in enumerate(row, 1):
            try:
                float(cell)
            except ValueError:
                return f"line {line} column {col}: {cell.strip()!r} is not a number"
    return "not a numeric CSV"


def read_kaggle_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a Kaggle heartbeat CSV: float32 `(n, 1, 187)` values and int64 labels 0–4."""
    valid = f"rows of {WINDOW} numbers and a label 0–4, no header"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns about an empty file; we say it
            a = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        raise DataError(f"{path} {_first_bad_cell(path)} (valid: {valid})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e})") from None
    if a.shape[0] == 0:
        raise DataError(f"{path} has no rows (valid: {valid})")
    if a.shape[1] != WINDOW + 1:
        raise DataError(f"{path}: {a.shape[1]} columns, expected {WINDOW} values + 1 label")
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
    if len(bad):
        raise DataError(f"{path} line {bad[0] + 1}: NaN/inf value ({len(bad)} rows affected)")
    label = a[:, -1]
    wrong = np.flatnonzero((label != np.round(label)) | (label < 0) | (label >= len(CLASSES)))
    if len(wrong):
        raise DataError(
            f"{path} line {wrong[0] + 1}: label {label[wrong[0]]:g} is unknown "
            f"(valid: 0–4 = {', '.join(CLASSES)})"
        )
    return a[:, None, :-1].astype(np.float32), label.astype(np.int64)


class MITDBBeatsDataset(MITDBRecords):
    """Kachuee/Kaggle-style MIT-BIH beats: 187 samples at 125 Hz from the R peak, AAMI classes."""

    name: ClassVar[str] = "mitdb-beats"
    source: Literal["auto", "wfdb", "csv"] = "auto"
    segment: Literal["rr", "fixed"] = "rr"
    csv_val: float = Field(0.1, ge=0, lt=1, description="share of mitbih_train.csv validating")
    seed: int = 0

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, "multiclass", CLASSES, (self.lead,), float(FS_OUT), WINDOW)

    def uses_csv(self) -> bool:
        root = self.folder()
        if self.source == "csv" or (
            self.source == "auto" and any((root / f).exists() for f in CSV_FILES)
        ):
            missing = [f for f in CSV_FILES if not (root / f).exists()]
            if missing:
                raise DataError(
                    f"Kaggle CSV {root / missing[0]} is missing (need {', '.join(CSV_FILES)})"
                )
            return True
        return False

    def cache_parts(self) -> dict[str, Any]:
        if self.uses_csv():
            root = self.folder()
            return {
                **self.model_dump(mode="json", exclude={"data_dir", "cache_dir"}),
                "sources": fingerprint(root, [root / f for f in CSV_FILES]),
            }
        return super().cache_parts()

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        return self._build_csv() if self.uses_csv() else self._build_wfdb()

    def _build_wfdb(self) -> tuple[dict[str, Split], dict[str, Any]]:
        beats, leads_used, unlabelled = self.segment_all(
            lambda path: kachuee_beats(path, self.lead, self.segment),
            "segment MIT-BIH beats (125 Hz)",
        )
        splits, rule = split_beats(beats, WINDOW)
        all_y = np.concatenate([y for _, y in beats.values()])
        rule_text = (
            "1.2 × median R–R of the 10 s block after the R peak, zero-padded to 187"
            if self.segment == "rr"
            else "187 samples after the R peak"
        )
        describe = {
            "source": "WFDB records + .atr beat annotations",
            "records": list(beats),
            "records_without_annotations": unlabelled,
            "lead_used": leads_used,
            "units": "mV",
            "resampling": f"{FS} → {FS_OUT} Hz (resample_poly 25/72)",
            "window": f"{WINDOW} samples ({WINDOW / FS_OUT:.3f} s) starting at the annotated R peak: {rule_text}",
            "beats": int(len(all_y)),
            "class_counts": {c: int(v) for c, v in zip(CLASSES, np.bincount(all_y, minlength=5))},
            "split_rule": rule,
            **split_counts(splits),
        }
        return splits, describe

    def _build_csv(self) -> tuple[dict[str, Split], dict[str, Any]]:
        root = self.folder()
        x_tr, y_tr = read_kaggle_csv(root / CSV_FILES[0])
        x_te, y_te = read_kaggle_csv(root / CSV_FILES[1])
        idx = stratified_split(y_tr, (1 - self.csv_val, self.csv_val, 0.0), self.seed)
        splits = {
            "train": Split(
                x_tr[idx["train"]], y_tr[idx["train"]], [f"train:{i}" for i in idx["train"]]
            ),
            "val": Split(x_tr[idx["val"]], y_tr[idx["val"]], [f"train:{i}" for i in idx["val"]]),
            "test": Split(x_te, y_te, [f"test:{i}" for i in range(len(y_te))]),
        }
        all_y = np.concatenate([y_tr, y_te])
        values = np.concatenate([x_tr.ravel(), x_te.ravel()])
        describe = {
            "source": f"Kaggle CSV ({', '.join(CSV_FILES)})",
            "units": "normalised to [0, 1] (Kachuee 2018 min–max per 10 s block): NOT mV",
            "value_range": [float(values.min()), float(values.max())],
            "window": f"{WINDOW} samples at {FS_OUT} Hz from the R peak, zero-padded (as in the CSV)",
            "beats": int(len(all_y)),
            "rows": {CSV_FILES[0]: len(y_tr), CSV_FILES[1]: len(y_te)},
            "class_counts": {c: int(v) for c, v in zip(CLASSES, np.bincount(all_y, minlength=5))},
            "split_rule": (
                f"test = {CSV_FILES[1]}; {CSV_FILES[0]} stratified per class, "
                f"{self.csv_val:g} validates, seed {self.seed}"
            ),
            **split_counts(splits),
        }
        return splits, describe
