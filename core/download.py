"""Fetch a public PhysioNet release: verify PhysioNet's SHA256SUMS, resume interrupted files,
and never leave a half-written or unverified file under its final name."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import DataError, UserError

SOURCES = {
    "ptbxl": "https://physionet.org/files/ptb-xl/1.0.3/",
    "mitdb": "https://physionet.org/files/mitdb/1.0.0/",
}
SUMS = "SHA256SUMS.txt"
CHUNK = 1 << 16


@dataclass
class DownloadReport:
    """What a download did: files listed, fetched, already present with the right hash, and
    one note per `.part` file left by an earlier run that had to be finished or replaced."""

    files_total: int = 0
    files_downloaded: int = 0
    files_skipped: int = 0
    bytes_downloaded: int = 0
    notes: list[str] = field(default_factory=list)


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


def _open(url: str, timeout: float, start: int = 0) -> Any:
    """The server's response from byte `start` on; None when it answers 416 (nothing there)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if start and e.code == 416:
            return None
        raise UserError(f"cannot fetch {url}: {e} (re-run the same command to resume)") from None
    except (urllib.error.URLError, HTTPException, OSError) as e:
        raise UserError(f"cannot fetch {url}: {e} (re-run the same command to resume)") from None


def _receive(url: str, part: Path, timeout: float, start: int) -> int | None:
    """Append the bytes from `start` on to `part` (rewrite it when the server sends the whole
    file); the bytes read, or None when the server has nothing from `start` on (HTTP 416)."""
    response = _open(url, timeout, start)
    if response is None:
        return None
    got = 0
    with response:
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
    return got


def fetch_file(url: str, final: Path, digest: str, timeout: float) -> tuple[int, str | None]:
    """Download `url` into `final + .part` (resuming it), verify, then rename; returns the bytes
    read and a note when a `.part` left by an earlier run was finished or replaced."""
    part = final.with_name(final.name + ".part")
    final.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    if start and sha256(part) == digest:  # the last run stopped between last byte and rename
        os.replace(part, final)
        return 0, (
            f"{final.name}: the {start}-byte .part of an earlier run was complete and matched "
            "its SHA-256: finished without downloading"
        )
    got, note = 0, None
    if start:
        resumed = _receive(url, part, timeout, start)
        if resumed is not None and sha256(part) == digest:
            os.replace(part, final)
            return resumed, None
        why = (
            "is not shorter than the file on the server (HTTP 416)"
            if resumed is None
            else "did not match its SHA-256 once resumed (stale or corrupt)"
        )
        note = f"{final.name}: the {start}-byte .part of an earlier run {why}: deleted and downloaded again"
        part.unlink(missing_ok=True)
        got = resumed or 0
    got += _receive(url, part, timeout, 0) or 0
    actual = sha256(part)
    if actual != digest:
        part.unlink()
        raise DataError(
            f"{final.name}: SHA256 {actual} does not match the published {digest}; deleted"
        )
    os.replace(part, final)
    return got, note


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

    def one(item: tuple[str, str]) -> tuple[int, str | None] | None:
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
                report.bytes_downloaded += got[0]
                report.notes += [got[1]] if got[1] else []
            if progress:
                progress(done, len(sums))
    return report
