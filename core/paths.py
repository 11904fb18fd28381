"""Where the arena keeps its state: ECGARENA_HOME (default ./.ecgarena), or --home."""

from __future__ import annotations

import os
from pathlib import Path


def home(override: Path | None = None) -> Path:
    """The home folder holding results.sqlite, the dataset cache and trained weights."""
    path = Path(override or os.environ.get("ECGARENA_HOME", ".ecgarena"))
    path.mkdir(parents=True, exist_ok=True)
    return path
