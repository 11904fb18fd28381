"""Shared behaviour of the built-in datasets: options, data folder lookup and cached splits."""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import PrivateAttr

from ..errors import UserError
from ..options import Options
from ..protocols import DatasetInfo, Split, SplitName
from .cache import SPLITS, cached_splits


class CachedDataset(Options):
    """A dataset whose three splits are decoded once by `build()` and then memory-mapped."""

    name: ClassVar[str]
    needs_data_dir: ClassVar[bool] = True
    marker: ClassVar[str] = ""  # a file that must exist in the data folder
    data_dir: Path | None = None
    cache_dir: Path = Path(".ecgarena")
    _loaded: tuple[dict[str, Split], dict[str, Any]] | None = PrivateAttr(None)
    _notes: list[str] = PrivateAttr(default_factory=list)

    @property
    @abstractmethod
    def info(self) -> DatasetInfo:
        """Task, classes, leads, rate and length of the decoded records."""

    def folder(self) -> Path:
        """The data folder: `data_dir`, else $ECGARENA_DATA; must hold `marker`."""
        folder = self.data_dir or (
            Path(os.environ["ECGARENA_DATA"]) if "ECGARENA_DATA" in os.environ else None
        )
        if folder is None:
            raise UserError(
                f"dataset {self.name!r} needs --data-dir (or ECGARENA_DATA): a folder with {self.marker}"
            )
        if not Path(folder).is_dir():
            raise UserError(f"data dir {str(folder)!r} does not exist")
        if self.marker and not (Path(folder) / self.marker).exists():
            raise UserError(
                f"data dir {str(folder)!r} has no {self.marker}: is it a {self.name} folder?"
            )
        return Path(folder)

    @property
    def notes(self) -> list[str]:
        """What loading had to repair (e.g. a cache entry that failed its SHA-256 check)."""
        return self._notes

    def cache_parts(self) -> dict[str, Any]:
        """Everything that determines the decoded arrays (options and source fingerprint)."""
        return self.model_dump(mode="json", exclude={"data_dir", "cache_dir"})

    @abstractmethod
    def build(self) -> tuple[dict[str, Split], dict[str, Any]]:
        """Decode the source into train/val/test splits and a description."""

    def _splits(self) -> tuple[dict[str, Split], dict[str, Any]]:
        if self._loaded is None:
            splits, meta, note = cached_splits(
                self.cache_dir, self.name, self.cache_parts(), self.build
            )
            self._notes += [note] if note else []
            self._loaded = splits, meta
        return self._loaded

    def load(self, split: SplitName) -> Split:
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r} (valid: {', '.join(SPLITS)})")
        return self._splits()[0][split]

    def describe(self) -> dict[str, Any]:
        info = self.info
        return {
            "dataset": self.name,
            "task": info.task,
            "fs_hz": info.fs,
            "leads": list(info.leads),
            "n_samples": info.n_samples,
            "classes": list(info.classes),
            **self._splits()[1],
        }
