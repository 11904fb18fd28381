"""Who runs what in one home: several `ecgarena matrix` processes share a home by claiming a
task (a cell key, or `train:<weights key>`) in the store's `claims` table before running it.
A claim lives while its owner's heartbeat is fresh; a stale one is taken over, and so is one
whose owner was a process of this machine that no longer runs (a killed driver's claims do not
make the re-run wait)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .store import immediate

HEARTBEAT_S = 5.0  # how often a running process renews its claims
STALE_S = 30.0  # a claim whose heartbeat is older than this belongs to a dead process


class Claims:
    """This process's claims in the store at `path` (its `claims` table: `ecgarena.store`)."""

    def __init__(self, path: Path, stale_s: float = STALE_S) -> None:
        self.path, self.stale_s = Path(path), stale_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: set[str] = set()  # what this process holds (its rows of the table)

    def take(self, task: str) -> bool:
        """Claim `task` unless another live process holds it (a stale claim is taken over)."""
        now = time.time()
        with immediate(self.path) as db:
            row = db.execute(
                "SELECT owner, heartbeat FROM claims WHERE task = ?", (task,)
            ).fetchone()
            if row is not None and row[0] != self.owner and now - row[1] < self.stale_s:
                if not _gone(row[0]):
                    return False
            db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (task, self.owner, now))
        self.held.add(task)
        return True

    def release(self, task: str) -> None:
        """Give a finished (stored or failed) task back."""
        with immediate(self.path) as db:
            db.execute("DELETE FROM claims WHERE task = ? AND owner = ?", (task, self.owner))
        self.held.discard(task)

    def beat(self) -> None:
        """Renew every claim of this process."""
        with immediate(self.path) as db:
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
            with immediate(self.path) as db:
                db.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))
            self.held.clear()


def _gone(owner: str) -> bool:
    """Whether `owner` (host:pid:nonce) was a process of this machine that has ended."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False
