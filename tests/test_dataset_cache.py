"""Decoded dataset caches are verified on read: any damaged, truncated or unreadable file of an
entry is discarded, decoded again from the sources and reported once in `dataset.notes`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from ecgarena.cli import app
from ecgarena.datasets import cache
from ecgarena.datasets.cache import ENTRY_FILES, MANIFEST, cached_splits
from ecgarena.datasets.ptbxl import PTBXLDataset
from ecgarena.protocols import Split
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from .test_datasets import small_ptbxl

PARTS = {"options": {"n": 7}}


def tiny_splits() -> tuple[dict[str, Split], dict[str, object]]:
    """FIXTURE: three small splits of seeded random values (not ECG)."""
    rng = np.random.default_rng(0)
    splits = {
        s: Split(
            rng.normal(size=(n, 2, 16)).astype(np.float32),
            rng.integers(0, 3, n),
            [f"{s}{i}" for i in range(n)],
        )
        for s, n in (("train", 5), ("val", 2), ("test", 3))
    }
    return splits, {"records": 10}


class Builder:
    """A `build` callable that counts how often the cache had to decode."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> tuple[dict[str, Split], dict[str, object]]:
        self.calls += 1
        return tiny_splits()


def entry_of(root: Path) -> Path:
    (entry,) = (root / "datasets").iterdir()
    return entry


def same_as_built(splits: dict[str, Split]) -> bool:
    want, _ = tiny_splits()
    return all(
        np.array_equal(splits[s].x, want[s].x)
        and np.array_equal(splits[s].y, want[s].y)
        and splits[s].ids == want[s].ids
        for s in want
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template")
    cached_splits(root, "tiny", PARTS, Builder())
    return root


def test_written_entry_has_a_manifest_and_reloads_without_decoding(tmp_path):
    build = Builder()
    first, meta, note = cached_splits(tmp_path, "tiny", PARTS, build)
    entry = entry_of(tmp_path)
    files = json.loads((entry / MANIFEST).read_text())["files"]
    assert sorted(files) == sorted(ENTRY_FILES) and note is None
    assert all(files[n]["size"] == (entry / n).stat().st_size for n in files)
    again, meta2, note2 = cached_splits(tmp_path, "tiny", PARTS, build)
    assert build.calls == 1 and note2 is None and meta == meta2 == {"records": 10}
    assert isinstance(again["test"].x, np.memmap) and same_as_built(again)


FILES = [*ENTRY_FILES, MANIFEST]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(FILES),
    where=st.floats(0, 1, exclude_max=True),
    flip=st.integers(1, 255),
    truncate=st.booleans(),
)
def test_any_flipped_byte_or_truncation_is_detected_and_rebuilt(
    template, tmp_path, name, where, flip, truncate
):
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    shutil.copytree(template, root, dirs_exist_ok=True)
    path = entry_of(root) / name
    data = bytearray(path.read_bytes())
    at = int(where * len(data))
    if truncate:
        del data[at:]
    else:
        data[at] ^= flip
    path.write_bytes(bytes(data))
    build = Builder()
    splits, _, note = cached_splits(root, "tiny", PARTS, build)
    assert build.calls == 1 and same_as_built(splits)
    assert note is not None and note.startswith("cache ") and "re-decoded from the sources" in note
    if name != MANIFEST:  # a damaged manifest may name the file whose hash it now misstates
        assert name in note
    assert cached_splits(root, "tiny", PARTS, build)[2] is None and build.calls == 1


def test_missing_manifest_is_rebuilt(tmp_path, template):
    shutil.copytree(template, tmp_path / "a")
    (entry_of(tmp_path / "a") / MANIFEST).unlink()  # e.g. written by an older version
    _, _, note = cached_splits(tmp_path / "a", "tiny", PARTS, Builder())
    assert (
        note
        == f"cache {entry_of(tmp_path / 'a')} has no manifest.json: re-decoded from the sources"
    )


def test_missing_file_of_an_entry_is_rebuilt(tmp_path, template):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    (entry_of(tmp_path) / "val_y.npy").unlink()
    build = Builder()
    splits, _, note = cached_splits(tmp_path, "tiny", PARTS, build)
    assert build.calls == 1 and same_as_built(splits)
    assert note == (
        f"cache {entry_of(tmp_path) / 'val_y.npy'} cannot be read (No such file or directory): "
        "re-decoded from the sources"
    )


def test_hash_is_checked_once_per_file_per_process(tmp_path, template, monkeypatch):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    hashed = []
    real = cache._file_sha256
    monkeypatch.setattr(cache, "_file_sha256", lambda p: hashed.append(p.name) or real(p))
    cached_splits(tmp_path, "tiny", PARTS, Builder())
    assert sorted(hashed) == sorted(ENTRY_FILES)
    cached_splits(tmp_path, "tiny", PARTS, Builder())
    assert len(hashed) == len(ENTRY_FILES)  # same size, mtime, ctime and inode: not re-hashed
    path = entry_of(tmp_path) / "test_x.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    (path.parent / "new").write_bytes(bytes(data))
    os.replace(path.parent / "new", path)  # a replaced file (new inode) is hashed again
    build = Builder()
    _, _, note = cached_splits(tmp_path, "tiny", PARTS, build)
    assert build.calls == 1 and "test_x.npy failed its SHA-256 check" in note


# ---------------------------------------------------------------- a real loader and the CLI


def test_ptbxl_truncated_or_flipped_cache_is_re_decoded_and_noted(tmp_path):
    root = small_ptbxl(tmp_path)
    first = PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c")
    want = first.load("test").x.copy()
    assert first.notes == []
    entry = entry_of(tmp_path / "c")
    moved = tmp_path / "c2" / "datasets" / entry.name  # a new path: not checked yet this process
    shutil.copytree(entry, moved)
    x = moved / "test_x.npy"
    size = x.stat().st_size
    x.write_bytes(x.read_bytes()[:-7])
    d = PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c2")
    assert np.array_equal(d.load("test").x, want)
    assert d.notes == [
        f"cache {x} has {size - 7} bytes, {size} were written: re-decoded from the sources"
    ]
    d.load("train")
    assert len(d.notes) == 1  # one note per repaired entry, not per split
    shutil.rmtree(tmp_path / "c2")
    shutil.copytree(entry, moved)
    raw = bytearray(x.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # a flipped bit in the samples, same size
    x.write_bytes(bytes(raw))
    d = PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c2")
    assert np.array_equal(d.load("test").x, want)
    assert d.notes == [f"cache {x} failed its SHA-256 check: re-decoded from the sources"]


def test_cli_data_info_reports_the_rebuilt_cache_and_missing_sources(tmp_path):
    root = small_ptbxl(tmp_path)
    home = tmp_path / "home"
    args = ["data", "info", "ptbxl", "--data-dir", str(root), "--home", str(home)]
    runner = CliRunner()
    assert runner.invoke(app, [*args, "--json"]).exit_code == 0
    (entry,) = (home / "cache" / "datasets").iterdir()
    moved = tmp_path / "home2" / "cache" / "datasets" / entry.name
    shutil.copytree(entry, moved)
    (moved / "val_ids.json").write_text("[]")
    args2 = ["data", "info", "ptbxl", "--data-dir", str(root), "--home", str(tmp_path / "home2")]
    out = runner.invoke(app, [*args2, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["notes"] == [
        f"cache {moved / 'val_ids.json'} has 2 bytes, "
        f"{(entry / 'val_ids.json').stat().st_size} were written: re-decoded from the sources"
    ]
    (root / "scp_statements.csv").unlink()  # sources gone, only the cache left
    out = runner.invoke(app, args)
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert out.output.strip() == (
        f"error: source file {root / 'scp_statements.csv'} is missing or unreadable "
        "(No such file or directory)"
    )
    shutil.rmtree(root)
    out = runner.invoke(app, args)
    assert (
        out.exit_code == 2 and out.output.strip() == f"error: data dir {str(root)!r} does not exist"
    )
