"""Decoded datasets cached as memory-mapped `.npy`, keyed by a hash of sources and options."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..protocols import Split

SPLITS = ("train", "val", "test")


def fingerprint(root: Path, files: Iterable[Path]) -> str:
    """Hash of each file's relative path, size and mtime (cheap even for 40k records)."""
    h = hashlib.sha256()
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cached_splits(
    cache_root: Path,
    name: str,
    parts: dict[str, Any],
    build: Callable[[], tuple[dict[str, Split], dict[str, Any]]],
) -> tuple[dict[str, Split], dict[str, Any]]:
    """Load the splits from cache, or build them once and write them atomically.

    `build` returns the three splits and a JSON-ready description. Arrays come back
    memory-mapped read-only, so a second load costs almost nothing.
    """
    final = Path(cache_root) / "datasets" / f"{name}-{key_of(parts)}"
    if not (final / "meta.json").exists():
        splits, meta = build()
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
        try:
            for s, split in splits.items():
                np.save(tmp / f"{s}_x.npy", np.ascontiguousarray(split.x, dtype=np.float32))
                np.save(tmp / f"{s}_y.npy", split.y)
                (tmp / f"{s}_ids.json").write_text(json.dumps(split.ids))
            (tmp / "meta.json").write_text(
                json.dumps({"parts": parts, "describe": meta}, default=str)
            )
            if final.exists():  # a concurrent build finished first; keep its copy
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((final / "meta.json").read_text())["describe"]
    splits = {
        s: Split(
            np.load(final / f"{s}_x.npy", mmap_mode="r"),
            np.load(final / f"{s}_y.npy", mmap_mode="r"),
            json.loads((final / f"{s}_ids.json").read_text()),
        )
        for s in SPLITS
    }
    return splits, meta
