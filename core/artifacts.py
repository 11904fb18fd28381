"""Content-addressed files of the home folder (weights, universal perturbations, plot records):
safetensors written atomically with a SHA-256 of their content in the header, verified on every
read. A file that fails its check is never used: callers rebuild it and say so, or name it."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

if TYPE_CHECKING:
    import torch

DIGEST_KEY = "content_sha256"  # the header field holding the digest of everything else


def digest(obj: Any, n: int = 24) -> str:
    """A short stable hash of a JSON-able object (cache keys of weights and perturbations)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def content_digest(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """SHA-256 over the metadata and every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode())
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write `tensors` with `metadata` and their content digest to a temporary file, then
    rename: a reader sees the old file or the whole new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = {k: v.detach().cpu().contiguous().numpy() for k, v in tensors.items()}
    meta = {k: v for k, v in metadata.items() if k != DIGEST_KEY}
    meta[DIGEST_KEY] = content_digest(cpu, meta)
    _atomic(path, lambda tmp: save_file(cpu, str(tmp), meta))


def install_bytes(path: Path, data: bytes) -> None:
    """Write an artifact received from another machine (its bytes as written there) the same
    atomic way; its content digest is checked when it is read, as for any cached file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda tmp: tmp.write_bytes(data))


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename over `path`."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


class ArtifactError(Exception):
    """A stored file that is absent, unreadable, truncated or fails its SHA-256 check."""


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a file written by `save_tensors`, after checking its digest;
    raises ArtifactError with the reason (missing, unreadable, no digest, digest mismatch)."""
    if not path.is_file():
        raise ArtifactError(f"{path} is missing")
    try:
        with safe_open(str(path), "numpy") as f:
            meta = dict(f.metadata() or {})
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(f"{path} is unreadable or truncated ({e})") from None
    want = meta.pop(DIGEST_KEY, None)
    if want is None:
        raise ArtifactError(f"{path} carries no content digest (written by an older version)")
    if content_digest(arrays, meta) != want:
        raise ArtifactError(f"{path} failed its SHA-256 check (its bytes changed after writing)")
    import torch  # here, not at the top: the store and `--help` need no torch

    return {k: torch.from_numpy(np.array(a)) for k, a in arrays.items()}, meta


def read_or_none(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str], str | None]:
    """`read_tensors`, or empty results and the reason it failed (None: absent, nothing to say)."""
    try:
        tensors, meta = read_tensors(path)
    except ArtifactError as e:
        return {}, {}, (str(e) if path.exists() else None)
    return tensors, meta, None
