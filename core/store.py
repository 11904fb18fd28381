"""The results store: SQLite, one row per finished (or failed) cell, never overwritten.

A re-run with `--force` appends a new row for the same cell key; a cell's state is its newest
row. Rows are `CellResult`s in strict JSON, validated on read. The schema is versioned
(`PRAGMA user_version`) and migrated forward in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .artifacts import digest
from .errors import DataError
from .result import CellResult

V1 = """
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT NOT NULL,
    created REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    dataset TEXT, model TEXT, defense TEXT, attack TEXT, eps TEXT, seed INTEGER, device TEXT,
    audit_passed INTEGER,
    error TEXT,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_key ON cells (cell_key);
"""
CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    task TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    heartbeat REAL NOT NULL
);
"""
V2_COLUMNS = ("params_digest", "data_key", "source", "eval_dataset")
FILTER_COLUMNS = {"dataset", "model", "defense", "attack", "seed"}  # filterable in `results`


def _v2(db: sqlite3.Connection) -> None:
    """Columns for the params digest, data key, transfer source and eval dataset; every row
    rewritten as strict JSON (NaN/inf → null with the reason)."""
    for column in V2_COLUMNS:
        db.execute(f"ALTER TABLE cells ADD COLUMN {column} TEXT")
    for row_id, text in db.execute("SELECT id, result FROM cells").fetchall():
        try:
            result = CellResult.from_raw(json.loads(text))
        except (ValidationError, ValueError) as e:
            raise DataError(
                f"row {row_id} is not a cell result ({str(e).splitlines()[0]}): cannot migrate"
                " the store; move the file aside or use another --home"
            ) from None
        db.execute(
            f"UPDATE cells SET result = ?, {', '.join(f'{c} = ?' for c in V2_COLUMNS)} WHERE id = ?",
            (_json(result), *_extra_columns(result), row_id),
        )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    lambda db: _script(db, V1),
    _v2,
    lambda db: _script(db, CLAIMS),  # v3: claims of processes sharing the home (ecgarena.claims)
)
SCHEMA_VERSION = len(MIGRATIONS)


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated statements inside the current transaction (`executescript` would
    commit it first)."""
    for statement in filter(str.strip, sql.split(";")):
        db.execute(statement)


@contextmanager
def immediate(path: Path) -> Iterator[sqlite3.Connection]:
    """One write-locked transaction from its first statement (`BEGIN IMMEDIATE`): what it
    reads cannot change before it writes, across processes (claims, migrations)."""
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _json(result: CellResult) -> str:
    """Strict JSON: `json.dumps` refuses NaN, so SQLite's JSON functions accept every row."""
    return json.dumps(result.row(), allow_nan=False)


def _extra_columns(result: CellResult) -> tuple[str | None, ...]:
    spec = result.spec
    params = {k: spec.get(k) for k in spec if k.endswith("_params")}
    source = "/".join(filter(None, (spec.get("source_model"), spec.get("source_defense"))))
    return digest(params), result.data_key, source or None, spec.get("eval_dataset")


class Store:
    """Transactional SQLite store of cell results (`results.sqlite` under the home folder)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with immediate(self.path) as db:  # two processes opening one new home: one migrates
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise DataError(
                    f"{self.path} has schema version {version}, newer than this ecgarena's "
                    f"{SCHEMA_VERSION}: upgrade ecgarena or use another --home"
                )
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](db)
                db.execute(f"PRAGMA user_version = {step + 1}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a connection that is closed afterwards (commit or roll back)."""
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.row_factory = sqlite3.Row
            yield db

    def add(self, result: CellResult) -> int:
        """Append one cell result in a single transaction; returns its row id."""
        if result.status == "skipped":
            raise ValueError(f"cell {result.key} is a stored result already (status skipped)")
        spec = result.spec
        row = (
            result.key,
            time.time(),
            result.status,
            spec["dataset"],
            spec["model"],
            spec["defense"],
            spec["attack"],
            json.dumps(spec["eps"]),
            spec["seed"],
            result.device,
            None if result.audit is None else int(result.audit.passed),
            result.error,
            _json(result),
            *_extra_columns(result),
        )
        columns = "cell_key, created, status, dataset, model, defense, attack, eps, seed, device"
        columns += ", audit_passed, error, result, " + ", ".join(V2_COLUMNS)
        with self._db() as db:
            cur = db.execute(
                f"INSERT INTO cells ({columns}) VALUES ({', '.join('?' * len(row))})", row
            )
            return int(cur.lastrowid or 0)

    def latest(self, key: str) -> CellResult | None:
        """The newest row of a cell (its state), or None when it never ran."""
        with self._db() as db:
            q = "SELECT id, result FROM cells WHERE cell_key = ? ORDER BY id DESC LIMIT 1"
            row = db.execute(q, (key,)).fetchone()
        return None if row is None else self._read(row)

    def latest_done(self, key: str) -> CellResult | None:
        """The newest row of a cell when it is a finished result (a failed newest row: None)."""
        result = self.latest(key)
        return result if result is not None and result.status == "done" else None

    def results(self, all_rows: bool = False, **columns: Any) -> list[CellResult]:
        """Every stored result, or only the newest per cell key (the default); `columns`
        (dataset, model, defense, attack, seed) keep only rows with those values."""
        unknown = set(columns) - FILTER_COLUMNS
        if unknown:
            raise ValueError(
                f"cannot filter on {sorted(unknown)} (valid: {sorted(FILTER_COLUMNS)})"
            )
        where = [f"{c} = ?" for c in columns]
        if not all_rows:
            where.append("id IN (SELECT MAX(id) FROM cells GROUP BY cell_key)")
        q = "SELECT id, result FROM cells" + (" WHERE " + " AND ".join(where) if where else "")
        with self._db() as db:
            rows = db.execute(q + " ORDER BY id", list(columns.values())).fetchall()
        return [self._read(r) for r in rows]

    def _read(self, row: sqlite3.Row) -> CellResult:
        """A stored row, validated; a row that is not a cell result is named, never used."""
        try:
            return CellResult.model_validate(json.loads(row["result"]))
        except (ValidationError, ValueError) as e:
            first = str(e).splitlines()[0]
            raise DataError(
                f"row {row['id']} of {self.path} is not a valid cell result ({first}); "
                "move the file aside or use another --home"
            ) from None
