"""PhysioNet/CinC Challenge 2021 12-lead records (WFDB `.hea` + `.mat`), SNOMED-CT labels
mapped to the five PTB-XL diagnostic superclasses, so PTB-XL-trained models apply zero-shot.

Mapping (`SUPERCLASS`, codes as in the CinC 2021 dx_mapping tables): conduction blocks and IVCD
→ CD; LVH/RVH/atrial enlargement or abnormality → HYP (LV high voltage alone, 55827005, is a
voltage criterion, a form statement in PTB-XL, so it is not mapped);
infarction codes → MI; ST/T abnormalities, ischaemia and long QT → STTC; sinus rhythm
(426783006, the code CinC 2021 gave PTB-XL's NORM) → NORM only when no other superclass is
present. Pure rhythm codes (tachycardia, PAC, AF, axis, ...) have no PTB-XL superclass: a
record with none of the mapped codes is dropped, as the PTB-XL loader drops its records.
Records are resampled to `rate` and cropped (or zero-padded at the end) to 10 s.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from scipy.signal import resample_poly

from ..errors import DataError, UserError
from ..progress import progress
from ..protocols import DatasetInfo, Split
from .base import CachedDataset
from .cache import SPLITS, fingerprint
from .framing import fit_length
from .ptbxl import CLASSES, DURATION_S, LEADS
from .wfdb_io import read_physical

SUPERCLASS = {
    **dict.fromkeys(
        (
            "270492004 195042002 54016002 28189009 27885002 233917008 164909002 733534002 "
            "59118001 713427006 713426002 251120003 445118002 445211001 6374002 698252002 "
            "74390002 164947007 20826005 426995002"
        ).split(),
        "CD",
    ),
    **dict.fromkeys(
        (
            "164873001 89792004 67741000119109 446358003 446813000 195126007 253352002 253339007"
        ).split(),
        "HYP",
    ),
    **dict.fromkeys("164865005 57054005 413844008 54329005 164867002 22298006".split(), "MI"),
    **dict.fromkeys(
        (
            "164861001 426434006 425419005 413444003 164930006 429622005 164931005 "
            "164934002 59931005 428750005 55930002 111975006 425623009 704997005"
        ).split(),
        "STTC",
    ),
}
SINUS_RHYTHM = "426783006"
DX_LINE = "SNOMED-CT codes separated by commas, e.g. '# Dx: 426783006,164865005'"
SOURCES = {"E": "georgia", "HR": "ptbxl", "JS": "chapman-ningbo", "A": "cpsc", "Q": "cpsc-extra"}
Source = Literal["georgia", "ptbxl", "chapman-ningbo", "cpsc", "cpsc-extra"]


def source_of(record: str) -> str:
    """The CinC 2021 source database of a record, from its name's prefix."""
    prefix = record.rstrip("0123456789")
    if prefix not in SOURCES:
        raise DataError(
            f"CinC 2021 record {record!r}: unknown prefix {prefix!r} "
            f"(known: {', '.join(f'{k}=' + v for k, v in SOURCES.items())})"
        )
    return SOURCES[prefix]


def dx_codes(comments: list[str], record: str) -> list[str]:
    """SNOMED-CT codes of the `# Dx:` header line."""
    for line in comments:
        key, _, value = line.partition(":")
        if key.strip() == "Dx":
            codes = [c.strip() for c in value.split(",") if c.strip()]
            if not codes or not all(c.isdigit() for c in codes):
                raise DataError(
                    f"CinC 2021 record {record}: {'blank' if not codes else 'malformed'} Dx "
                    f"line {'# ' + line!r} (valid: {DX_LINE})"
                )
            return codes
    raise DataError(f"CinC 2021 record {record}: header has no '# Dx:' line (valid: {DX_LINE})")


def superclasses(codes: list[str]) -> set[str]:
    """PTB-XL superclasses of a record's SNOMED codes (NORM: sinus rhythm and nothing else)."""
    found = {SUPERCLASS[c] for c in codes if c in SUPERCLASS}
    if not found and SINUS_RHYTHM in codes:
        found = {"NORM"}
    return found


def read_cinc2021(path: Path, rate: int) -> tuple[np.ndarray, list[str]]:
    """One record as float32 `(12, rate·10)` in mV in PTB-XL lead order, and its Dx codes."""
    raw, fields = read_physical(path)
    names = [n.upper() for n in fields["sig_name"]]
    if sorted(names) != sorted(LEADS):
        raise DataError(
            f"record {path}: leads {fields['sig_name']}, expected the 12 standard leads"
        )
    signal = raw[[names.index(lead) for lead in LEADS]]
    ratio = Fraction(rate) / Fraction(fields["fs"]).limit_denominator(1000)
    if ratio != 1:
        signal = resample_poly(signal, ratio.numerator, ratio.denominator, axis=1)
    out = fit_length(signal.astype(np.float32), rate * DURATION_S, pad="end")
    return out, dx_codes(fields["comments"], path.name)


def split_of(record: str, seed: int) -> str:
    """A stable 70/10/20 train/val/test assignment from a hash of the record name and seed."""
    u = int(hashlib.sha256(f"{seed}:{record}".encode()).hexdigest()[:8], 16) / 16**8
    return "train" if u < 0.7 else "val" if u < 0.8 else "test"


class CinC2021Dataset(CachedDataset):
    """CinC 2021 12-lead records as PTB-XL superclass multilabel targets (zero-shot target)."""

    name: ClassVar[str] = "cinc2021"
    marker: ClassVar[str] = ""
    rate: Literal[100, 500] = Field(500, description="resampling rate (PTB-XL's 100 or 500 Hz)")
    sources: list[Source] = Field(
        default_factory=lambda: ["georgia", "chapman-ningbo", "ptbxl"],
        min_length=1,
        description="source databases to keep (record-name prefixes E, JS, HR, A, Q)",
    )
    seed: int = Field(0, ge=0, description="seed of the record-hash 70/10/20 split")

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.name, "multilabel", CLASSES, LEADS, float(self.rate), self.rate * DURATION_S
        )

    def records(self) -> list[str]:
        """Names of the records (with both .hea and .mat) from the chosen sources."""
        root = self.folder()
        heads = sorted(p.stem for p in root.glob("*.hea"))
        if not heads:
            raise UserError(f"data dir {str(root)!r} has no .hea files: is it a CinC 2021 folder?")
        missing = [r for r in heads if not (root / f"{r}.mat").exists()]
        if missing:
            raise DataError(f"CinC 2021 record {missing[0]}: .hea without .mat ({len(missing)})")
        return [r for r in heads if source_of(r) in self.sources]

    def cache_parts(self) -> dict[str, Any]:
        root = self.folder()
        files = [root / f"{r}{ext}" for r in self.records() for ext in (".hea", ".mat")]
        return {
            **super().cache_parts(),
            "sources_fingerprint": fingerprint(root, files),
            "label_map": sorted(SUPERCLASS.items()),  # a new mapping never reuses old labels
        }

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        root = self.folder()
        names = self.records()
        if not names:
            raise DataError(f"data dir {str(root)!r} has no records from sources {self.sources}")
        kept, xs, ys, dropped, unmapped = [], [], [], Counter(), Counter()
        with progress() as bar:
            task = bar.add_task("decode CinC 2021", total=len(names), info="")
            for r in names:
                x, codes = read_cinc2021(root / r, self.rate)
                labels = superclasses(codes)
                unmapped.update(c for c in codes if c not in SUPERCLASS and c != SINUS_RHYTHM)
                bar.advance(task)
                if not labels:
                    dropped[source_of(r)] += 1
                    continue
                xs.append(x)
                ys.append([float(c in labels) for c in CLASSES])
                kept.append(r)
        if not kept:
            raise DataError(f"no CinC 2021 record in {str(root)!r} maps to a PTB-XL superclass")
        x, y = np.stack(xs), np.asarray(ys, np.float32)
        where = np.array([split_of(r, self.seed) for r in kept])
        ids = np.array(kept)
        splits = {s: Split(x[where == s], y[where == s], ids[where == s].tolist()) for s in SPLITS}
        describe = {
            "records": len(names),
            "records_by_source": dict(Counter(source_of(r) for r in names)),
            "records_with_superclass": len(kept),
            "dropped_without_superclass": dict(dropped),
            "class_counts": dict(zip(CLASSES, map(int, y.sum(0)))),
            "class_counts_by_source": {
                src: dict(zip(CLASSES, map(int, y[[source_of(r) == src for r in kept]].sum(0))))
                for src in sorted({source_of(r) for r in kept})
            },
            "label_map": "SNOMED-CT → PTB-XL superclass (ecgarena.datasets.cinc2021.SUPERCLASS); "
            "sinus rhythm alone → NORM",
            "unmapped_codes": dict(unmapped.most_common(10)),
            "resampled_to_hz": self.rate,
            "length": f"{DURATION_S} s: cropped, or zero-padded at the end",
            "split_sizes": {s: len(v) for s, v in splits.items()},
        }
        return splits, describe
