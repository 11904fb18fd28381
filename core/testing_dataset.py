"""The dataset half of the plugin author kit (public as `ecgarena.testing`): `check_dataset`
loads every split of a dataset plugin and checks it against its `DatasetInfo` and the units
contract (float32 mV records, labels of the task's form, disjoint splits)."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, get_args

import numpy as np

from .protocols import DatasetInfo, Split, SplitName, Task

SPLITS: tuple[str, ...] = get_args(SplitName)
MAX_MEDIAN_ABS_MV = 10.0
"""Upper bound of a split's median |x|: ECG in mV has a median |x| of ~0.05–0.5 mV, the same
records in µV (× 1000) ~50–500."""
MIN_PEAK_MV = 0.05
"""Lower bound of the median record's largest |x|: a QRS complex peaks at ≥ 0.5 mV, so records in
volts (× 0.001) or all zeros fall below it."""
AMPLITUDE_RECORDS = 256  # the amplitude statistics read this many evenly spaced records at most


@dataclass(frozen=True)
class DatasetChecked:
    """What `check_dataset` measured, per split: records, median |x| (mV), the median record's
    largest |x| (mV); and the dataset's info and `describe()`."""

    info: DatasetInfo
    sizes: dict[str, int]
    median_abs_mv: dict[str, float]
    peak_mv: dict[str, float]
    description: dict[str, Any] | str


def _row_digests(x: np.ndarray) -> dict[str, int]:
    """A content hash of each record, mapped to the record's index (the last one of equals)."""
    return {
        hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=16).hexdigest(): i
        for i, row in enumerate(x)
    }


def check_dataset(
    dataset: Any,
    options: dict[str, Any] | None = None,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> DatasetChecked:
    """Load train, val and test of `dataset` (a class is built as the core builds it, with
    `options`, `data_dir` and `cache_dir`, default a temporary folder) and check: `info`;
    each split non-empty, float32 finite `(records, leads, n_samples)` in mV (`MAX_MEDIAN_ABS_MV`,
    `MIN_PEAK_MV`), one id per record, labels of the task's form; no record in two splits;
    a non-empty `describe()`. A broken rule is an AssertionError naming the dataset."""
    if not isinstance(dataset, type):
        return _check(dataset)
    with tempfile.TemporaryDirectory(prefix="ecgarena-check-") as tmp:
        folder = Path(tmp) if cache_dir is None else cache_dir
        return _check(dataset(**(options or {}), data_dir=data_dir, cache_dir=folder))


def _check(dataset: Any) -> DatasetChecked:
    """`check_dataset` on a dataset instance."""
    label = getattr(dataset, "name", type(dataset).__qualname__)

    def require(ok: bool, rule: str) -> None:
        """Raise the one-line AssertionError of a broken rule unless `ok`."""
        if not ok:
            raise AssertionError(f"dataset {label!r}: {rule}")

    info = dataset.info
    require(isinstance(info, DatasetInfo), f"info is {type(info).__qualname__}, not a DatasetInfo")
    require(info.task in get_args(Task), f"info.task {info.task!r} is not one of {get_args(Task)}")
    least = 2 if info.task == "multiclass" else 1
    require(len(info.classes) >= least, f"info.classes {info.classes} has fewer than {least}")
    require(
        len(info.leads) >= 1 and len(set(info.leads)) == len(info.leads),
        f"info.leads {info.leads} must be distinct names, at least one",
    )
    require(
        info.fs > 0 and info.n_samples > 0,
        f"info.fs {info.fs:g} Hz and info.n_samples {info.n_samples} must both be > 0",
    )
    shape = (len(info.leads), info.n_samples)
    sizes, medians, peaks, digests = {}, {}, {}, {}
    for name in SPLITS:
        split = dataset.load(name)
        where = f"split {name!r}"
        require(isinstance(split, Split), f"load({name!r}) returned {type(split).__qualname__}")
        x, y = np.asarray(split.x), np.asarray(split.y)
        n = len(x)
        require(n > 0, f"{where} is empty")
        require(
            x.ndim == 3 and x.shape[1:] == shape,
            f"{where} records are {x.shape}, expected (records, leads, n_samples) = (n, *{shape})",
        )
        require(x.dtype == np.float32, f"{where} records are {x.dtype}, not float32")
        require(bool(np.isfinite(x).all()), f"{where} holds non-finite values (NaN or inf)")
        sample = np.abs(x[np.unique(np.linspace(0, n - 1, AMPLITUDE_RECORDS).astype(int))])
        medians[name] = float(np.median(sample))
        peaks[name] = float(np.median(sample.max(axis=(1, 2))))
        require(
            medians[name] <= MAX_MEDIAN_ABS_MV,
            f"{where} median |x| is {medians[name]:.4g} mV, above {MAX_MEDIAN_ABS_MV:g} mV: "
            "records must be in mV (µV? divide by 1000)",
        )
        require(
            peaks[name] >= MIN_PEAK_MV,
            f"{where} median record peak |x| is {peaks[name]:.4g} mV, below {MIN_PEAK_MV:g} mV: "
            "records must be in mV (volts? multiply by 1000), not all zeros",
        )
        require(len(split.ids) == n, f"{where} has {len(split.ids)} ids for {n} records")
        require(len(y) == n, f"{where} has {len(y)} labels for {n} records")
        if info.task == "multiclass":
            require(
                y.shape == (n,) and np.issubdtype(y.dtype, np.integer),
                f"{where} multiclass labels are {y.dtype} {y.shape}, expected integer ({n},)",
            )
            require(
                bool(((y >= 0) & (y < len(info.classes))).all()),
                f"{where} labels outside 0..{len(info.classes) - 1}",
            )
        else:
            require(
                y.shape == (n, len(info.classes)),
                f"{where} multilabel labels are {y.shape}, expected ({n}, {len(info.classes)})",
            )
            require(bool(np.isin(y, (0, 1)).all()), f"{where} multilabel labels are not 0/1")
        sizes[name] = n
        digests[name] = (_row_digests(x), split.ids)
    for a, b in combinations(SPLITS, 2):
        (rows_a, ids_a), (rows_b, ids_b) = digests[a], digests[b]
        shared = sorted(rows_a.keys() & rows_b.keys())
        example = (
            f" (e.g. {ids_a[rows_a[shared[0]]]!r} and {ids_b[rows_b[shared[0]]]!r})"
            if shared
            else ""
        )
        require(not shared, f"{len(shared)} identical record(s) in splits {a!r} and {b!r}{example}")
    description = dataset.describe()
    require(
        isinstance(description, dict | str) and bool(description),
        f"describe() returned {description!r}, not a non-empty dict or str",
    )
    return DatasetChecked(info, sizes, medians, peaks, description)
