"""The embedded default dataset: deterministic synthetic 12-lead ECG with PTB-XL superclasses."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..protocols import DatasetInfo, Split
from ..synthetic_ecg import CLASSES, GENERATOR_VERSION, LEADS, generate
from .base import CachedDataset


class SyntheticDataset(CachedDataset):
    """Generated records split by fold (record i is in fold i mod 10 + 1): 1–8 train, 9 val, 10 test."""

    name: ClassVar[str] = "synthetic"
    n_records: int = Field(2000, ge=30, le=200_000)
    fs: int = Field(100, ge=50, le=1000)
    duration_s: float = Field(10.0, gt=1, le=60)
    data_seed: int = Field(0, ge=0, description="seed of the generator (fixed data across runs)")

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(
            self.name,
            "multilabel",
            CLASSES,
            LEADS,
            float(self.fs),
            round(self.fs * self.duration_s),
        )

    def cache_parts(self) -> dict[str, Any]:
        return {**super().cache_parts(), "generator": GENERATOR_VERSION}

    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        x, y = generate(self.n_records, self.data_seed, fs=self.fs, duration_s=self.duration_s)
        fold = np.arange(self.n_records) % 10 + 1
        masks = {"train": fold <= 8, "val": fold == 9, "test": fold == 10}
        ids = np.array([f"syn{i:06d}" for i in range(self.n_records)])
        splits = {s: Split(x[m], y[m], ids[m].tolist()) for s, m in masks.items()}
        describe = {
            "records": self.n_records,
            "source": f"generated (data_seed {self.data_seed})",
            "class_counts": dict(zip(CLASSES, map(int, y.sum(0)))),
            "folds": {"train": "1-8", "val": "9", "test": "10"},
            "split_sizes": {s: int(m.sum()) for s, m in masks.items()},
        }
        return splits, describe
