"""Who runs what in one home: several `ecgarena matrix` processes share a home by claiming a
task (a cell key, or `train:<weights key>`) in the store's `claims` table before running it.
A claim lives while its owner's heartbeat is fresh; a stale one is taken over."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

HEARTBEAT_S = 5.0  # how often a running process renews its claims
STALE_S = 30.0  # a claim whose heartbeat is older than this belongs to a dead process

TABLE = """
CREATE TABLE IF NOT EXISTS claims (
    task TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    heartbeat REAL NOT NULL
);
"""


class Claims:
    """This process's claims in the store at `path` (the table is created by the store)."""

    def __init__(self, path: Path, stale_s: float = STALE_S) -> None:
        self.path, self.stale_s = Path(path), stale_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locked) transaction: a claim is checked and taken atomically."""
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def take(self, task: str) -> bool:
        """Claim `task` unless another live process holds it (a stale claim is taken over)."""
        now = time.time()
        with self._db() as db:
            row = db.execute(
                "SELECT owner, heartbeat FROM claims WHERE task = ?", (task,)
            ).fetchone()
            if row is not None and row[0] != self.owner and now - row[1] < self.stale_s:
                return False
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (task, self.owner, now))
        return True

    def release(self, task: str) -> None:
        """Give a finished (stored or failed) task back."""
        with self._db() as db:
            db.execute("DELETE FROM claims WHERE task = ? AND owner = ?", (task, self.owner))

    def beat(self) -> None:
        """Renew every claim of this process."""
        with self._db() as db:
            db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))

    @contextmanager
    def alive(self, every_s: float = HEARTBEAT_S) -> Iterator[Claims]:
        """Renew this process's claims every `every_s` seconds while the block runs, and
        release any left when it ends (also on Ctrl-C)."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(every_s):
                self.beat()

        thread = threading.Thread(target=renew, name="ecgarena-claims", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            with self._db() as db:
                db.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
