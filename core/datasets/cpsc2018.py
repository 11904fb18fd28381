"""CPSC 2018 (China Physiological Signal Challenge) 12-lead ECG in its original `.mat` form.

Source layout: `REFERENCE.csv` (`Recording,First_label,Second_label,Third_label`, codes 1–9)
and `NAME.mat` files holding a MATLAB struct `ECG` with fields `sex`, `age` and `data`
(12 × n, leads I, II, III, aVR, aVL, aVF, V1–V6, 500 Hz). Scale: `data` is stored as float64
**in mV** (fractional values, QRS peaks of ~0.5–2 mV in the released files; the CinC 2020
re-release multiplies these by 1000 into int16 µV), so no conversion is applied; a record
whose median per-lead peak exceeds 50 is rejected as "looks like µV".

Only the `.mat` files present are loaded; `REFERENCE.csv` may list more (the full release
has 6,877 rows) and `describe()` reports found vs listed.

Targets: `labels="first"` (default) is multiclass on `First_label`, as the CPSC 2018 scoring
and the DNA_ECG seed use it; `labels="all"` is multilabel over the 1–3 labels of a record.
Leads: `leads="12"` or `"8"` (I, II, V1–V6: the independent leads; III, aVR, aVL, aVF are
linear combinations of I and II).

Fixed length: the first `length_s·500` samples are kept, shorter records are zero-padded on
both sides (⌊r/2⌋ before) like the ADV_ECG/DNA_ECG `create_data` (`pad="end"` pads after).
Default 30 s = 15 000 samples (the DNA_ECG seed uses 24 000 = 48 s: pass `length_s=48`);
most CPSC records are shorter than 30 s, so 30 s crops only the longest and keeps the cache at
~0.7 MB per 12-lead record.

Split: per `First_label` class with a seeded shuffle (default 70/10/20); with at least three
records every split is made non-empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

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

CLASSES = ("Normal", "AF", "I-AVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
FS = 500
MAX_PLAUSIBLE_MV = 50.0
CODES = {str(i) for i in range(1, len(CLASSES) + 1)}
HEADER = "Recording,First_label,Second_label,Third_label"


def read_reference(path: Path) -> dict[str, tuple[int, list[str]]]:
    """`REFERENCE.csv`: recording → (line number, its label fields as written, blanks kept)."""
    rows = read_rows(path)
    head = [h.strip() for h in rows[0][1][:2]] if rows else []
    if head != ["Recording", "First_label"]:
        raise DataError(f"{path}: header {head!r} (valid: {HEADER})")
    if len(rows) == 1:
        raise DataError(f"{path} has no records, only a header (valid: {HEADER}, a row per record)")
    out: dict[str, tuple[int, list[str]]] = {}
    for line, row in rows[1:]:
        if not row[0].strip():
            raise DataError(f"{path} line {line}: Recording is blank (valid: a name, e.g. A0001)")
        out[row[0].strip()] = (line, [v.strip() for v in row[1:]])
    return out


def label_codes(path: Path, record: str, line: int, fields: list[str]) -> list[int]:
    """The 1–9 codes of one REFERENCE.csv row (First_label first), or a DataError naming it."""
    valid = f"1–9 = {', '.join(CLASSES)}"
    if not fields or not fields[0]:
        raise DataError(f"{path} line {line}: First_label of {record} is blank (valid: {valid})")
    for v in filter(None, fields):
        if v not in CODES:
            raise DataError(
                f"{path} line {line}: label {v!r} of {record} is unknown (valid: {valid})"
            )
    return [int(v) for v in fields if v]


def read_cpsc_mat(path: Path) -> tuple[np.ndarray, str, float | None]:
    """`ECG.data` as float64 `(12, n)` in mV, plus sex and age, validated."""
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
        ecg = mat["ECG"]
        data = np.asarray(ecg.data)
    except KeyError:
        raise DataError(f"record {path}: no struct 'ECG' (valid: CPSC 2018 .mat)") from None
    except AttributeError:
        raise DataError(f"record {path}: struct ECG has no field 'data'") from None
    except Exception as e:  # scipy raises many types for truncated/corrupt files
        raise DataError(f"record {path}: cannot be read ({type(e).__name__}: {e})") from None
    if data.ndim != 2 or data.shape[0] != len(LEADS) or not np.issubdtype(data.dtype, np.number):
        raise DataError(
            f"record {path}: ECG.data has shape {data.shape}, expected 12 leads × n samples"
        )
    if data.shape[1] < FS:
        raise DataError(f"record {path}: only {data.shape[1]} samples (< 1 s, truncated?)")
    if not np.isfinite(data).all():
        raise DataError(f"record {path}: contains NaN/inf samples (corrupt data)")
    peak = float(np.median(np.abs(data).max(axis=1)))
    if peak > MAX_PLAUSIBLE_MV:
        raise DataError(
            f"record {path}: median lead peak {peak:g} looks like µV, expected mV (< {MAX_PLAUSIBLE_MV:g})"
        )
    sex = str(getattr(ecg, "sex", ""))
    try:
        age = float(getattr(ecg, "age", np.nan))
    except (TypeError, ValueError):
        age = None
    return data, sex, age if age is not None and np.isfinite(age) else None


class CPSC2018Dataset(FramedSplits, CachedDataset):
    """CPSC 2018 12- or 8-lead records at 500 Hz, fixed length, 9 classes, in mV."""

    name: ClassVar[str] = "cpsc2018"
    fs: ClassVar[float] = FS
    marker: ClassVar[str] = "REFERENCE.csv"
    labels: Literal["first", "all"] = "first"
    leads: Literal["12", "8"] = "12"
    length_s: float = Field(30.0, gt=0, le=120, description="fixed record length (crop/pad)")

    @property
    def lead_names(self) -> tuple[str, ...]:
        return LEADS if self.leads == "12" else INDEPENDENT

    @property
    def info(self) -> DatasetInfo:
        task = "multiclass" if self.labels == "first" else "multilabel"
        return DatasetInfo(self.name, task, CLASSES, self.lead_names, float(FS), self.n_samples)

    def records(self) -> list[str]:
        root = self.folder()
        found = sorted(p.stem for p in root.glob("*.mat"))
        if not found:
            raise DataError(
                f"data dir {str(root)!r} has no .mat records: is it a CPSC 2018 folder?"
            )
        return found

    def cache_parts(self) -> dict[str, Any]:
        root = self.folder()
        files = [root / "REFERENCE.csv"] + [root / f"{r}.mat" for r in self.records()]
        return {**super().cache_parts(), "sources": fingerprint(root, files)}

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        root = self.folder()
        names = self.records()
        rows = read_reference(root / "REFERENCE.csv")
        unlisted = [r for r in names if r not in rows]
        if unlisted:
            raise DataError(
                f"{root / 'REFERENCE.csv'}: record {unlisted[0]}.mat has no row "
                f"({len(unlisted)} records on disk are not listed)"
            )
        reference = {r: label_codes(root / "REFERENCE.csv", r, *rows[r]) for r in names}
        odd_rows = sum(
            1
            for _, f in rows.values()
            if not f or f[0] not in CODES or set(filter(None, f)) - CODES
        )
        pick = [LEADS.index(lead) for lead in self.lead_names]
        xs, lengths, sexes, ages = [], [], [], []
        with progress() as bar:
            task = bar.add_task("decode CPSC 2018", total=len(names), info="")
            for r in names:
                data, sex, age = read_cpsc_mat(root / f"{r}.mat")
                lengths.append(data.shape[1])
                xs.append(fit_length(data[pick].astype(np.float32), self.n_samples, self.pad))
                sexes.append(sex)
                ages.append(age)
                bar.advance(task)
        x = np.stack(xs)
        first = np.array([reference[r][0] - 1 for r in names], np.int64)
        if self.labels == "first":
            y = first
        else:
            y = np.zeros((len(names), len(CLASSES)), np.float32)
            for i, r in enumerate(names):
                y[i, [c - 1 for c in reference[r]]] = 1.0
        ids = np.array(names)
        idx = self.split(first)
        splits = {s: Split(x[i], y[i], ids[i].tolist()) for s, i in idx.items()}
        all_labels = np.zeros(len(CLASSES), np.int64)
        for r in names:
            for c in reference[r]:
                all_labels[c - 1] += 1
        known_ages = [a for a in ages if a is not None]
        describe = {
            "records_found": len(names),
            "records_listed": len(rows),
            "listed_rows_with_labels_outside_1_9": odd_rows,
            "records": names,
            "target": "First_label, multiclass"
            if self.labels == "first"
            else "all labels, multilabel",
            "class_counts": {c: int(v) for c, v in zip(CLASSES, np.bincount(first, minlength=9))},
            "label_counts_all": {c: int(v) for c, v in zip(CLASSES, all_labels)},
            "leads_used": list(self.lead_names),
            "units": "mV (ECG.data stored as float mV, no conversion)",
            **self.framing(lengths),
            "sex_counts": {s: sexes.count(s) for s in sorted(set(sexes))},
            "age_range": [min(known_ages), max(known_ages)] if known_ages else None,
            "split_rule": (
                f"stratified by First_label {self.train:g}/{self.val:g}/{self.test:g}, "
                f"seed {self.seed}, every split non-empty"
            ),
            "split_sizes": {s: len(i) for s, i in idx.items()},
            "split_class_counts": {
                s: {c: int(v) for c, v in zip(CLASSES, np.bincount(first[i], minlength=9)) if v}
                for s, i in idx.items()
            },
        }
        return splits, describe
