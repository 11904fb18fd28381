"""`data download` against a local HTTP server (127.0.0.1) serving a FIXTURE PhysioNet tree,
with `Range` support and HTTP 416 past the end, as PhysioNet's server answers."""

from __future__ import annotations

import hashlib
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ecgarena.cli import app
from ecgarena.download import download
from ecgarena.errors import DataError, UserError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

FILES = {
    "records100/00000/00001_lr.hea": b"00001_lr 12 100 1000\n" * 3,
    "records100/00000/00001_lr.dat": bytes(range(256)) * 200,
    "ptbxl_database.csv": b"ecg_id,scp_codes\n1,\"{'NORM': 100.0}\"\n",
}


class Handler(SimpleHTTPRequestHandler):
    """Serves the fixture tree with `Range: bytes=N-` support and scripted faults."""

    cut: dict[str, int] = {}  # path → bytes to send before dropping the connection (once)
    corrupt: set[str] = set()
    ranges: list[tuple[str, str]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        rel = self.path.lstrip("/")
        path = Path(self.directory) / rel
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if rel in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        start = 0
        if rng := self.headers.get("Range"):
            self.ranges.append((rel, rng))
            start = int(rng.removeprefix("bytes=").rstrip("-"))
        if start >= len(data) > 0:  # as real servers: nothing left to send from there
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if rel in self.cut:
            self.wfile.write(data[start : start + self.cut.pop(rel)])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n" for rel, d in FILES.items())
    (root / "SHA256SUMS.txt").write_text(sums)
    Handler.cut, Handler.corrupt, Handler.ranges = {}, set(), []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Handler(*a, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root
    httpd.shutdown()
    httpd.server_close()


def tree(dest: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(dest)): p.read_bytes()
        for p in dest.rglob("*")
        if p.is_file() and p.name != "SHA256SUMS.txt"
    }


def test_full_download_then_nothing_to_do(server, tmp_path):
    url, _ = server
    dest = tmp_path / "ptbxl"
    report = download("ptbxl", dest, base_url=url)
    assert tree(dest) == FILES
    assert (report.files_total, report.files_downloaded, report.files_skipped) == (3, 3, 0)
    assert report.bytes_downloaded == sum(map(len, FILES.values()))
    again = download("ptbxl", dest, base_url=url)
    assert (again.files_downloaded, again.files_skipped) == (0, 3)


def test_interrupted_download_leaves_only_part_and_resumes(server, tmp_path):
    url, _ = server
    dest = tmp_path / "ptbxl"
    big = "records100/00000/00001_lr.dat"
    Handler.cut[big] = 10_000
    with pytest.raises(UserError, match="re-run"):
        download("ptbxl", dest, base_url=url, workers=1)
    assert not (dest / big).exists()
    assert (dest / (big + ".part")).stat().st_size == 10_000
    report = download("ptbxl", dest, base_url=url, workers=1)
    assert (big, "bytes=10000-") in Handler.ranges
    assert tree(dest) == FILES and report.files_downloaded >= 1


def test_corrupted_file_is_rejected_and_not_kept(server, tmp_path):
    url, _ = server
    dest = tmp_path / "ptbxl"
    Handler.corrupt.add("ptbxl_database.csv")
    with pytest.raises(DataError, match="ptbxl_database.csv"):
        download("ptbxl", dest, base_url=url)
    assert not (dest / "ptbxl_database.csv").exists()
    assert not (dest / "ptbxl_database.csv.part").exists()


def test_unsafe_checksum_path_and_unknown_name(server, tmp_path):
    url, root = server
    with pytest.raises(UserError, match="ptbxl, mitdb"):
        download("ptb", tmp_path)
    (root / "SHA256SUMS.txt").write_text(f"{'0' * 64}  ../evil\n")
    with pytest.raises(DataError, match="unsafe path"):
        download("mitdb", tmp_path / "m", base_url=url)


def test_cli_download_and_unreachable_server(server, tmp_path):
    url, _ = server
    result = CliRunner().invoke(
        app, ["data", "download", "mitdb", "--dest", str(tmp_path / "m"), "--base-url", url]
    )
    assert result.exit_code == 0 and "3 downloaded" in result.output.replace("\n", " ")
    result = CliRunner().invoke(
        app,
        [
            "data",
            "download",
            "mitdb",
            "--dest",
            str(tmp_path / "x"),
            "--base-url",
            "http://127.0.0.1:9/",
        ],
    )
    assert result.exit_code == 2 and "cannot fetch" in result.output


BIG = "records100/00000/00001_lr.dat"


def left_part(dest: Path, content: bytes) -> Path:
    """FIXTURE: the `.part` file a run killed mid-way (or after the last byte) leaves."""
    part = dest / (BIG + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(content)
    return part


def test_complete_part_is_finished_without_downloading(server, tmp_path):
    url, _ = server
    dest = tmp_path / "ptbxl"
    part = left_part(dest, FILES[BIG])  # killed after the last byte, before the rename
    report = download("ptbxl", dest, base_url=url, workers=1)
    assert tree(dest) == FILES and not part.exists()
    assert not [r for r in Handler.ranges if r[0] == BIG]  # not asked for again
    assert report.notes == [
        f"00001_lr.dat: the {len(FILES[BIG])}-byte .part of an earlier run was complete and "
        "matched its SHA-256: finished without downloading"
    ]
    assert report.bytes_downloaded == sum(len(d) for r, d in FILES.items() if r != BIG)


@pytest.mark.parametrize("extra", [b"", b"junk after the end"])
def test_full_size_or_oversize_part_that_fails_its_hash_is_replaced(server, tmp_path, extra):
    url, _ = server
    dest = tmp_path / "ptbxl"
    bad = bytearray(FILES[BIG])
    bad[7] ^= 0xFF
    part = left_part(dest, bytes(bad) + extra)
    report = download("ptbxl", dest, base_url=url, workers=1)
    assert tree(dest) == FILES and not part.exists()
    assert (BIG, f"bytes={len(bad) + len(extra)}-") in Handler.ranges  # the server said 416
    assert report.notes == [
        f"00001_lr.dat: the {len(bad) + len(extra)}-byte .part of an earlier run is not "
        "shorter than the file on the server (HTTP 416): deleted and downloaded again"
    ]


def test_stale_short_part_that_fails_its_hash_once_resumed_is_replaced(server, tmp_path):
    url, _ = server
    dest = tmp_path / "ptbxl"
    left_part(dest, b"x" * 100)  # from another version of the file
    report = download("ptbxl", dest, base_url=url, workers=1)
    assert tree(dest) == FILES
    assert report.notes == [
        "00001_lr.dat: the 100-byte .part of an earlier run did not match its SHA-256 once "
        "resumed (stale or corrupt): deleted and downloaded again"
    ]


def test_cli_says_what_happened_to_a_left_part(server, tmp_path):
    url, _ = server
    dest = tmp_path / "ptbxl"
    left_part(dest, FILES[BIG] + b"!")
    args = ["data", "download", "ptbxl", "--dest", str(dest), "--base-url", url]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "(HTTP 416): deleted and downloaded again" in result.output
    again = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert again.exit_code == 0 and "3 already present and verified" in again.output
    assert "note:" not in again.output


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keep=st.integers(0, len(FILES[BIG]) + 50), flip=st.integers(-1, len(FILES[BIG]) + 49))
def test_whatever_part_a_killed_run_left_one_rerun_ends_verified(server, tmp_path, keep, flip):
    url, _ = server
    dest = Path(tempfile.mkdtemp(dir=tmp_path))
    content = bytearray((FILES[BIG] + b"z" * 50)[:keep])
    if 0 <= flip < keep:
        content[flip] ^= 0x5A
    part = left_part(dest, bytes(content))
    download("ptbxl", dest, base_url=url, workers=1)
    assert tree(dest) == FILES and not part.exists()
