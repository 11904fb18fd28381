"""Decoded datasets cached as memory-mapped `.npy`, keyed by a hash of sources and options.

Every cache entry carries `manifest.json` (size and SHA-256 of each of its files), written
after them; an entry that fails the check on read is discarded and decoded again.
"""

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

from ..errors import DataError
from ..protocols import Split

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"
ENTRY_FILES = tuple(f"{s}_{part}" for s in SPLITS for part in ("x.npy", "y.npy", "ids.json")) + (
    "meta.json",
)
# (path, size, mtime, ctime, inode) of cache files whose SHA-256 matched in this process
_verified: set[tuple[str, int, int, int, int]] = set()


def fingerprint(root: Path, files: Iterable[Path]) -> str:
    """Hash of each file's relative path, size and mtime (cheap even for 40k records)."""
    h = hashlib.sha256()
    for f in sorted(files):
        try:
            st = f.stat()
        except OSError as e:
            raise DataError(f"source file {f} is missing or unreadable ({e.strerror})") from None
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def key_of(parts: dict[str, Any]) -> str:
    """The cache key: a short hash of everything that determines the decoded arrays."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _stamp(path: Path) -> tuple[str, int, int, int, int]:
    """What identifies one version of a file: path, size, mtime, ctime and inode."""
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _canonical(files: dict[str, Any]) -> str:
    """The one byte form of a manifest: any other text of it is damage."""
    return json.dumps({"files": files}, sort_keys=True, separators=(",", ":"))


def write_manifest(entry: Path) -> None:
    """Record size and SHA-256 of every entry file in `entry/manifest.json`, atomically."""
    files = {
        name: {"size": (entry / name).stat().st_size, "sha256": _file_sha256(entry / name)}
        for name in ENTRY_FILES
    }
    tmp = entry / f".{MANIFEST}.part"
    tmp.write_text(_canonical(files))
    os.replace(tmp, entry / MANIFEST)


def check_entry(entry: Path) -> str | None:
    """None when every file of `entry` matches its manifest, else what is wrong (one phrase)."""
    try:
        text = (entry / MANIFEST).read_text()
        files = json.loads(text)["files"]
        intact = _canonical(files) == text and sorted(files) == sorted(ENTRY_FILES)
        intact = intact and all(sorted(files[n]) == ["sha256", "size"] for n in ENTRY_FILES)
    except FileNotFoundError:
        return f"{entry} has no {MANIFEST}"
    except (OSError, ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        return f"{entry / MANIFEST} is damaged"
    for name in ENTRY_FILES:
        path, want = entry / name, files[name]
        try:
            stamp = _stamp(path)
            if stamp[1] != want["size"]:
                return f"{path} has {stamp[1]} bytes, {want['size']} were written"
            if stamp not in _verified and _file_sha256(path) != want["sha256"]:
                return f"{path} failed its SHA-256 check"
        except OSError as e:
            return f"{path} cannot be read ({e.strerror or type(e).__name__})"
        _verified.add(stamp)
    return None


def _discard(entry: Path) -> None:
    """Move a failed entry out of the way (atomically) and delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".{entry.name}-failed-", dir=entry.parent))
    try:
        os.replace(entry, trash / "entry")
    except FileNotFoundError:
        pass  # another process discarded it first
    except OSError as e:
        raise DataError(
            f"cache {entry} failed its check and cannot be removed ({e.strerror}): delete it"
        ) from None
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _write(
    final: Path, parts: dict[str, Any], splits: dict[str, Split], meta: dict[str, Any]
) -> None:
    """Write a built entry into a temporary folder, add its manifest, then rename it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        for s, split in splits.items():
            np.save(tmp / f"{s}_x.npy", np.ascontiguousarray(split.x, dtype=np.float32))
            np.save(tmp / f"{s}_y.npy", split.y)
            (tmp / f"{s}_ids.json").write_text(json.dumps(split.ids))
        (tmp / "meta.json").write_text(json.dumps({"parts": parts, "describe": meta}, default=str))
        write_manifest(tmp)
        try:
            os.replace(tmp, final)
        except OSError:
            if final.is_dir():  # a concurrent build finished first: keep its copy
                return
            raise
        _verified.update(_stamp(final / name) for name in ENTRY_FILES)  # hashed just now
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_splits(
    cache_root: Path,
    name: str,
    parts: dict[str, Any],
    build: Callable[[], tuple[dict[str, Split], dict[str, Any]]],
) -> tuple[dict[str, Split], dict[str, Any], str | None]:
    """The splits, their description and a note (None unless a failed entry was rebuilt).

    The entry is read from cache when it passes its check, else built once and written
    atomically. Arrays come back memory-mapped read-only. SHA-256 is checked once per file
    per process (memoised by path, size, mtime, ctime and inode).
    """
    final = Path(cache_root) / "datasets" / f"{name}-{key_of(parts)}"
    note = None
    if final.exists():
        problem = check_entry(final)
        if problem:
            _discard(final)
            note = f"cache {problem}: re-decoded from the sources"
    if not final.exists():
        _write(final, parts, *build())
    meta = json.loads((final / "meta.json").read_text())["describe"]
    splits = {
        s: Split(
            np.load(final / f"{s}_x.npy", mmap_mode="r"),
            np.load(final / f"{s}_y.npy", mmap_mode="r"),
            json.loads((final / f"{s}_ids.json").read_text()),
        )
        for s in SPLITS
    }
    return splits, meta, note
