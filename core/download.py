"""Fetch a public PhysioNet release: verify PhysioNet's SHA256SUMS, resume interrupted files,
and never leave a half-written or unverified file under its final name."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from .errors import DataError, UserError

SOURCES = {
    "ptbxl": "https://physionet.org/files/ptb-xl/1.0.3/",
    "mitdb": "https://physionet.org/files/mitdb/1.0.0/",
}
SUMS = "SHA256SUMS.txt"
CHUNK = 1 << 16


@dataclass
class DownloadReport:
    """What a download did: files listed, fetched, and already present with the right hash."""

    files_total: int = 0
    files_downloaded: int = 0
    files_skipped: int = 0
    bytes_downloaded: int = 0


def sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (downloads and cached weights are trusted only while it
    matches)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_sums(text: str) -> dict[str, str]:
    """`<sha256> <path>` lines → {relative path: hash}; unsafe paths are rejected."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.strip().partition(" ")
        name = name.strip().lstrip("*")
        parts = PurePosixPath(name).parts
        if len(digest) != 64 or not name:
            raise DataError(f"{SUMS} line {n} is not '<sha256> <path>': {line!r}")
        if PurePosixPath(name).is_absolute() or ".." in parts:
            raise DataError(f"{SUMS} line {n} has an unsafe path {name!r}")
        if name != SUMS:
            out[name] = digest.lower()
    return out


def _open(url: str, timeout: float, start: int = 0):
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, HTTPException, OSError) as e:
        raise UserError(f"cannot fetch {url}: {e} (re-run the same command to resume)") from None


def fetch_file(url: str, final: Path, digest: str, timeout: float) -> int:
    """Download `url` into `final + .part` (resuming it), verify, then rename; returns bytes read."""
    part = final.with_name(final.name + ".part")
    final.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    got = 0
    with _open(url, timeout, start) as response:
        mode = "ab" if start and response.status == 206 else "wb"
        expected = response.headers.get("Content-Length")
        try:
            with open(part, mode) as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    got += len(block)
        except (HTTPException, OSError) as e:
            raise UserError(f"download of {url} broke off: {e} (re-run to resume)") from None
    if expected is not None and got < int(expected):
        raise UserError(
            f"download of {url} broke off after {got} of {expected} bytes (re-run to resume)"
        )
    actual = sha256(part)
    if actual != digest:
        part.unlink()
        raise DataError(
            f"{final.name}: SHA256 {actual} does not match the published {digest}; deleted"
        )
    os.replace(part, final)
    return got


def download(
    name: str,
    dest: Path,
    *,
    base_url: str | None = None,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0,
) -> DownloadReport:
    """Mirror a PhysioNet release listed in its SHA256SUMS.txt into `dest`."""
    if name not in SOURCES:
        raise UserError(f"unknown download {name!r} (valid: {', '.join(SOURCES)})")
    root = (base_url or SOURCES[name]).rstrip("/") + "/"
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with _open(root + SUMS, timeout) as response:
        text = response.read().decode()
    sums = parse_sums(text)
    tmp = dest / (SUMS + ".part")
    tmp.write_text(text)
    os.replace(tmp, dest / SUMS)
    report = DownloadReport(files_total=len(sums))

    def one(item: tuple[str, str]) -> int | None:
        rel, digest = item
        final = dest / rel
        if final.exists() and sha256(final) == digest:
            return None
        return fetch_file(root + rel, final, digest, timeout)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, got in enumerate(pool.map(one, sorted(sums.items())), 1):
            if got is None:
                report.files_skipped += 1
            else:
                report.files_downloaded += 1
                report.bytes_downloaded += got
            if progress:
                progress(done, len(sums))
    return report
