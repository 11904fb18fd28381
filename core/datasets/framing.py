"""Fixed-length records and seeded stratified splits, shared by the loaders of folders that
come without official folds (CinC 2017, CPSC2018, MIT-BIH beats)."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from .cache import SPLITS


def fit_length(x: np.ndarray, n: int, pad: Literal["both", "end"] = "both") -> np.ndarray:
    """A new `(..., n)` array: the first `n` samples of `x`, or `x` zero-padded to `n`.

    `pad="both"`: ⌊r/2⌋ zeros before and r − ⌊r/2⌋ after (r = n − length), as ADV_ECG/DNA_ECG;
    `pad="end"`: all r zeros after. `x` itself is never modified.
    """
    length = x.shape[-1]
    if length >= n:
        return np.array(x[..., :n], copy=True)
    r = n - length
    before = r // 2 if pad == "both" else 0
    out = np.zeros((*x.shape[:-1], n), dtype=x.dtype)
    out[..., before : before + length] = x
    return out


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> dict[str, np.ndarray]:
    """Sorted indices per split: each class shuffled (seeded) and cut by `fractions`.

    Per class, val gets round(f_val·n) and test round(f_test·n) records, train the rest. When
    there are at least 3 records and a split with a non-zero fraction came out empty, one record
    moves into it from the largest split (its most frequent class), so small folders still
    give non-empty splits.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = round(fractions[1] * len(idx))
        n_test = min(round(fractions[2] * len(idx)), len(idx) - n_val)
        parts["test"] += idx[:n_test].tolist()
        parts["val"] += idx[n_test : n_test + n_val].tolist()
        parts["train"] += idx[n_test + n_val :].tolist()
    if len(labels) >= 3:
        for s, fraction in zip(SPLITS, fractions):
            if fraction > 0 and not parts[s]:
                donor = max(SPLITS, key=lambda d: len(parts[d]))
                common = Counter(labels[parts[donor]].tolist()).most_common(1)[0][0]
                move = next(i for i in parts[donor] if labels[i] == common)
                parts[donor].remove(move)
                parts[s].append(move)
    return {s: np.array(sorted(v), dtype=np.int64) for s, v in parts.items()}


def split_fractions(train: float, val: float, test: float) -> tuple[float, float, float]:
    total = train + val + test
    if min(train, val, test) < 0 or abs(total - 1) > 1e-6:
        raise ValueError(f"split fractions must be ≥ 0 and sum to 1, got {train}/{val}/{test}")
    return train, val, test


class FramedSplits(BaseModel):
    """Options of a loader that crops/pads to a fixed length and splits per class, seeded."""

    fs: ClassVar[float]  # the source rate, set by each loader
    pad: Literal["both", "end"] = "both"
    train: float = Field(0.7, ge=0, le=1)
    val: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.2, ge=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _fractions(self) -> FramedSplits:
        split_fractions(self.train, self.val, self.test)
        return self

    length_s: float = Field(60.0, gt=0, le=120, description="fixed record length (crop/pad)")

    @property
    def n_samples(self) -> int:
        return round(self.length_s * self.fs)

    def framing(self, lengths: list[int]) -> dict[str, Any]:
        """What `describe()` says about the source lengths and the crop/pad rule."""
        seconds = np.asarray(lengths) / self.fs
        return {
            "record_length_s": {
                "min": round(float(seconds.min()), 2),
                "median": round(float(np.median(seconds)), 2),
                "max": round(float(seconds.max()), 2),
            },
            "length_rule": (
                f"{self.n_samples} samples ({self.length_s:g} s): longer records keep the first "
                f"{self.n_samples}, shorter are zero-padded "
                + ("on both sides (floor(r/2) before)" if self.pad == "both" else "at the end")
            ),
            "records_cropped": int(sum(n > self.n_samples for n in lengths)),
            "records_padded": int(sum(n < self.n_samples for n in lengths)),
        }

    def split(self, labels: np.ndarray) -> dict[str, np.ndarray]:
        """Sorted record indices per split, stratified on `labels`."""
        return stratified_split(labels, (self.train, self.val, self.test), self.seed)
