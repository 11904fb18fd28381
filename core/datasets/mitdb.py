"""MIT-BIH Arrhythmia heartbeats: windows around each annotated R peak, AAMI classes.

Split: the inter-patient DS1 (train; the last 10 % of each record's beats validate) / DS2
(test) of de Chazal et al. When the records present leave DS1 or DS2 empty, every record
is split by time instead (first 70 % of beats train, next 10 % val, last 20 % test).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import wfdb
from pydantic import Field

from ..errors import DataError
from ..progress import progress
from ..protocols import DatasetInfo, Split
from .base import CachedDataset
from .cache import fingerprint
from .wfdb_io import check_header

CLASSES = ("N", "S", "V", "F", "Q")
AAMI = {
    **dict.fromkeys("NLRej", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}
DS1 = {
    101,
    106,
    108,
    109,
    112,
    114,
    115,
    116,
    118,
    119,
    122,
    124,
    201,
    203,
    205,
    207,
    208,
    209,
    215,
    220,
    223,
    230,
}
DS2 = {
    100,
    103,
    105,
    111,
    113,
    117,
    121,
    123,
    200,
    202,
    210,
    212,
    213,
    214,
    219,
    221,
    222,
    228,
    231,
    232,
    233,
    234,
}
FS = 360


def read_annotated(path: Path, lead: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """One lead in mV at 360 Hz, the annotation sample indices and symbols, and the lead used."""
    check_header(path)
    try:
        rec = wfdb.rdrecord(str(path))
        ann = wfdb.rdann(str(path), "atr")
    except Exception as e:
        raise DataError(
            f"MIT-BIH record {path}: cannot be read ({type(e).__name__}: {e})"
        ) from None
    if rec.fs != FS:
        raise DataError(f"MIT-BIH record {path}: sampling rate {rec.fs} Hz, expected {FS} Hz")
    used = lead if lead in rec.sig_name else rec.sig_name[0]
    sig = rec.p_signal[:, rec.sig_name.index(used)]
    if not np.isfinite(sig).all():
        raise DataError(f"MIT-BIH record {path}: contains NaN samples (corrupt data)")
    return sig, np.asarray(ann.sample), list(ann.symbol), used


def record_beats(path: Path, lead: str, pre: int, post: int) -> tuple[np.ndarray, list[str], str]:
    """Beat windows `(n, 1, pre+post)` in mV, their AAMI classes, and the lead actually used."""
    sig, samples, symbols, used = read_annotated(path, lead)
    keep = [
        (s, AAMI[sym])
        for s, sym in zip(samples, symbols)
        if sym in AAMI and s - pre >= 0 and s + post <= len(sig)
    ]
    windows = np.stack([sig[s - pre : s + post] for s, _ in keep]).astype(np.float32)[:, None, :]
    return windows, [c for _, c in keep], used


def split_beats(
    beats: dict[str, tuple[np.ndarray, np.ndarray]], n_samples: int
) -> tuple[dict[str, Split], str]:
    """Per-record beats `(windows, class indices)` into train/val/test, and the rule used.

    Inter-patient DS1/DS2 when both are present, else each record by time 70/10/20.
    """
    numbers = {r: int(r) if r.isdigit() else -1 for r in beats}
    inter = any(numbers[r] in DS1 for r in beats) and any(numbers[r] in DS2 for r in beats)
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for r, (w, y) in beats.items():
        ids = np.array([f"{r}:{i}" for i in range(len(y))])
        n = len(y)
        if inter:
            if numbers[r] in DS2:
                cuts = {"test": slice(0, n)}
            elif numbers[r] in DS1:
                cuts = {"train": slice(0, int(0.9 * n)), "val": slice(int(0.9 * n), n)}
            else:
                continue
        else:
            a, b = int(0.7 * n), int(0.8 * n)
            cuts = {"train": slice(0, a), "val": slice(a, b), "test": slice(b, n)}
        for s, sl in cuts.items():
            parts[s].append((w[sl], y[sl], ids[sl]))
    splits = {
        s: Split(
            np.concatenate([p[0] for p in ps]) if ps else np.zeros((0, 1, n_samples), np.float32),
            np.concatenate([p[1] for p in ps]) if ps else np.zeros(0, np.int64),
            np.concatenate([p[2] for p in ps]).tolist() if ps else [],
        )
        for s, ps in parts.items()
    }
    rule = (
        "inter-patient DS1/DS2" if inter else "intra-patient by time 70/10/20 (DS1 or DS2 absent)"
    )
    return splits, rule


def split_counts(splits: dict[str, Split]) -> dict[str, Any]:
    """Split sizes and per-split AAMI class counts, for `describe()`."""
    return {
        "split_sizes": {s: len(v) for s, v in splits.items()},
        "split_class_counts": {
            s: dict(Counter(CLASSES[i] for i in np.asarray(v.y))) for s, v in splits.items()
        },
    }


class MITDBRecords(CachedDataset):
    """What the MIT-BIH beat datasets share: the record folder, its fingerprint, the lead."""

    marker: ClassVar[str] = ""
    lead: str = "MLII"

    def records(self) -> tuple[list[str], list[str]]:
        """Record names with beat annotations (.atr) and those with signals only."""
        root = self.folder()
        heads = sorted(p.stem for p in root.glob("*.hea"))
        if not heads:
            raise DataError(f"data dir {str(root)!r} has no .hea files: is it an MIT-BIH folder?")
        labelled = [r for r in heads if (root / f"{r}.atr").exists()]
        return labelled, [r for r in heads if r not in labelled]

    def cache_parts(self) -> dict[str, Any]:
        root = self.folder()
        labelled, _ = self.records()
        files = [root / f"{r}{ext}" for r in labelled for ext in (".hea", ".dat", ".atr")]
        return {
            **super().cache_parts(),
            "sources": fingerprint(root, [f for f in files if f.exists()]),
        }

    def segment_all(
        self, segment: Callable[[Path], tuple[np.ndarray, list[str], str]], title: str
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str], list[str]]:
        """Run `segment` on every labelled record: beats per record, leads used, unlabelled."""
        root = self.folder()
        labelled, unlabelled = self.records()
        if not labelled:
            raise DataError(
                f"data dir {str(root)!r} has no .atr beat annotations: no labelled beats"
            )
        beats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        leads_used = {}
        with progress() as bar:
            task = bar.add_task(title, total=len(labelled), info="")
            for r in labelled:
                w, c, leads_used[r] = segment(root / r)
                beats[r] = (w, np.array([CLASSES.index(k) for k in c], np.int64))
                bar.advance(task)
        return beats, leads_used, unlabelled


class MITDBDataset(MITDBRecords):
    """Single-lead beats (default MLII) at 360 Hz, AAMI N/S/V/F/Q, multiclass."""

    name: ClassVar[str] = "mitdb"
    pre_s: float = Field(0.25, gt=0, le=1, description="window start before the R peak")
    post_s: float = Field(0.45, gt=0, le=1.5, description="window end after the R peak")

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.name, "multiclass", CLASSES, (self.lead,), float(FS), self._pre + self._post
        )

    @property
    def _pre(self) -> int:
        return round(self.pre_s * FS)

    @property
    def _post(self) -> int:
        return round(self.post_s * FS)

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        beats, leads_used, unlabelled = self.segment_all(
            lambda path: record_beats(path, self.lead, self._pre, self._post),
            "segment MIT-BIH beats",
        )
        splits, rule = split_beats(beats, self._pre + self._post)
        all_y = np.concatenate([y for _, y in beats.values()])
        describe = {
            "records": list(beats),
            "records_without_annotations": unlabelled,
            "lead_used": leads_used,
            "window_s": [-self.pre_s, self.post_s],
            "beats": int(len(all_y)),
            "class_counts": {c: int(v) for c, v in zip(CLASSES, np.bincount(all_y, minlength=5))},
            "split_rule": rule,
            **split_counts(splits),
        }
        return splits, describe
