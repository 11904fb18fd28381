"""PTB-XL (PhysioNet) in its original layout, with superdiagnostic multilabel targets.

Labels follow the PTB-XL benchmark: every scp code with `diagnostic == 1` maps to its
`diagnostic_class`; records with no superclass are dropped. Folds 1–8 train, 9 val, 10 test.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..errors import DataError
from ..progress import progress
from ..protocols import DatasetInfo, Split
from .base import CachedDataset
from .cache import fingerprint
from .csvfile import read_table
from .wfdb_io import read_record

CLASSES = ("CD", "HYP", "MI", "NORM", "STTC")
LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
DURATION_S = 10
FOLDS = range(1, 11)
VALID = {
    "ecg_id": "a record number, e.g. 1",
    "scp_codes": "a dict of scp codes, e.g. {'NORM': 100.0}",
    "strat_fold": "1–10",
    "filename_lr": "a record path, e.g. records100/00000/00001_lr",
    "filename_hr": "a record path, e.g. records500/00000/00001_hr",
}


def superclass_map(path: Path) -> dict[str, str]:
    """scp code → diagnostic superclass, from `scp_statements.csv`."""
    rows = read_table(path, {"", "diagnostic", "diagnostic_class"}, "PTB-XL's scp_statements.csv")
    return {
        r[""]: r["diagnostic_class"]
        for _, r in rows
        if r["diagnostic"] == "1.0" and r["diagnostic_class"]
    }


def read_database(path: Path) -> list[dict[str, str]]:
    """Rows of `ptbxl_database.csv`, checked for the columns and values the loader needs."""
    need = ("ecg_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
    rows = read_table(path, set(need), "PTB-XL's ptbxl_database.csv")
    for line, r in rows:
        record = r["ecg_id"] or "?"
        for col in need:
            if not r[col]:
                raise DataError(
                    f"{path} line {line}: {col} of record {record} is blank (valid: {VALID[col]})"
                )
        fold = r["strat_fold"]
        try:
            number = float(fold)
        except ValueError:
            number = float("nan")
        if number not in FOLDS:
            raise DataError(
                f"{path} line {line}: strat_fold {fold!r} of record {record} is not a fold "
                "(valid: 1–10)"
            )
        r["strat_fold"] = str(int(number))
    return [r for _, r in rows]


def labels_of(scp_codes: str, classes: dict[str, str], ecg_id: str) -> set[str]:
    """The superclasses of a record's `scp_codes` (a dict literal of code → likelihood)."""
    try:
        codes = ast.literal_eval(scp_codes)
    except (ValueError, SyntaxError, RecursionError):
        codes = None
    if not isinstance(codes, dict):
        raise DataError(
            f"PTB-XL record {ecg_id}: unreadable scp_codes {scp_codes!r} (valid: {VALID['scp_codes']})"
        )
    return {classes[c] for c in codes if c in classes}


class PTBXLDataset(CachedDataset):
    """PTB-XL 12-lead 10 s records at 100 or 500 Hz, five superclasses, multilabel."""

    name: ClassVar[str] = "ptbxl"
    marker: ClassVar[str] = "ptbxl_database.csv"
    rate: Literal[100, 500] = 100

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.name, "multilabel", CLASSES, LEADS, float(self.rate), self.rate * DURATION_S
        )

    def _files(self, rows: list[dict[str, str]]) -> list[Path]:
        col = "filename_lr" if self.rate == 100 else "filename_hr"
        root = self.folder()
        return [root / f"{r[col]}{ext}" for r in rows for ext in (".hea", ".dat")]

    def cache_parts(self) -> dict[str, Any]:
        root = self.folder()
        rows = read_database(root / "ptbxl_database.csv")
        sources = [root / "ptbxl_database.csv", root / "scp_statements.csv"]
        missing = [f for f in self._files(rows) if not f.exists()]
        if missing:
            raise DataError(
                f"PTB-XL record file {missing[0]} is missing ({len(missing)} files missing)"
            )
        return {**super().cache_parts(), "sources": fingerprint(root, sources + self._files(rows))}

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        root = self.folder()
        rows = read_database(root / "ptbxl_database.csv")
        classes = superclass_map(root / "scp_statements.csv")
        col = "filename_lr" if self.rate == 100 else "filename_hr"
        kept, dropped, xs, ys, folds = [], 0, [], [], []
        with progress() as bar:
            task = bar.add_task(f"decode PTB-XL {self.rate} Hz", total=len(rows), info="")
            for r in rows:
                labels = labels_of(r["scp_codes"], classes, r["ecg_id"])
                bar.advance(task)
                if not labels:
                    dropped += 1
                    continue
                xs.append(read_record(root / r[col], self.rate, len(LEADS), self.rate * DURATION_S))
                ys.append([float(c in labels) for c in CLASSES])
                folds.append(int(r["strat_fold"]))
                kept.append(r["ecg_id"])
        if not kept:
            raise DataError(
                f"no record of {root / 'ptbxl_database.csv'} has a diagnostic superclass "
                f"(valid: scp codes with diagnostic 1.0 in scp_statements.csv, classes {', '.join(CLASSES)})"
            )
        x, y, fold, ids = (
            np.stack(xs),
            np.asarray(ys, np.float32),
            np.asarray(folds),
            np.asarray(kept),
        )
        masks = {"train": fold <= 8, "val": fold == 9, "test": fold == 10}
        splits = {s: Split(x[m], y[m], ids[m].tolist()) for s, m in masks.items()}
        describe = {
            "records": len(rows),
            "records_with_superclass": len(kept),
            "dropped_without_superclass": dropped,
            "class_counts": dict(zip(CLASSES, map(int, y.sum(0)))),
            "fold_counts": dict(sorted(Counter(int(r["strat_fold"]) for r in rows).items())),
            "folds": {"train": "1-8", "val": "9", "test": "10"},
            "split_sizes": {s: int(m.sum()) for s, m in masks.items()},
        }
        return splits, describe
