"""The results store: SQLite, one row per finished (or failed) cell, never overwritten.

A re-run with `--force` appends a new row for the same cell key; readers take the newest.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

SCHEMA = """
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


FILTER_COLUMNS = {"dataset", "model", "defense", "attack", "seed"}  # filterable in `Store.results`


class Store:
    """Transactional SQLite store of cell results (`results.sqlite` under the home folder)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def add(self, result: dict[str, Any]) -> int:
        """Append one cell result in a single transaction; returns its row id."""
        spec = result["spec"]
        audit = result.get("audit")
        row = (
            result["key"],
            time.time(),
            result["status"],
            spec["dataset"],
            spec["model"],
            spec["defense"],
            spec["attack"],
            json.dumps(spec["eps"]),
            spec["seed"],
            result.get("device"),
            None if audit is None else int(audit["passed"]),
            result.get("error"),
            json.dumps(result, default=str),
        )
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO cells (cell_key, created, status, dataset, model, defense, attack, eps,"
                " seed, device, audit_passed, error, result) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            return int(cur.lastrowid)

    def done(self, key: str) -> bool:
        """Whether a finished (not failed) result exists for this cell key."""
        with self._connect() as db:
            q = "SELECT 1 FROM cells WHERE cell_key = ? AND status = 'done' LIMIT 1"
            return db.execute(q, (key,)).fetchone() is not None

    def latest(self, key: str) -> dict[str, Any] | None:
        with self._connect() as db:
            q = "SELECT result FROM cells WHERE cell_key = ? ORDER BY id DESC LIMIT 1"
            row = db.execute(q, (key,)).fetchone()
        return None if row is None else json.loads(row["result"])

    def results(self, all_rows: bool = False, **columns: Any) -> list[dict[str, Any]]:
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
        q = "SELECT result FROM cells" + (" WHERE " + " AND ".join(where) if where else "")
        with self._connect() as db:
            return [
                json.loads(r["result"])
                for r in db.execute(q + " ORDER BY id", list(columns.values()))
            ]


def select(results: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    """Results whose spec matches every given field: a value, or a list of allowed values
    (None: any)."""

    def matches(spec: dict[str, Any], field: str, wanted: Any) -> bool:
        got = spec.get(field)
        return wanted is None or (got in wanted if isinstance(wanted, list) else got == wanted)

    return [r for r in results if all(matches(r["spec"], f, w) for f, w in where.items())]


COLUMNS = (
    "dataset",
    "model",
    "source",
    "defense",
    "attack",
    "eps_mv",
    "seed",
    "status",
    "metric",
    "clean",
    "adversarial",
    "clean_f1",
    "adv_f1",
    "fooling_rate",
    "audit",
    "gate",
    "error",
)


def dataset_label(spec: dict[str, Any]) -> str:
    """The dataset a cell ran on: `ptbxl`, or `ptbxl→cinc2021(rate=100)` when zero-shot."""
    target = spec.get("eval_dataset")
    if not target:
        return spec["dataset"]
    options = spec.get("eval_dataset_params") or {}
    shown = ", ".join(
        f"{k}={'+'.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in sorted(options.items())
    )
    return f"{spec['dataset']}→{target}" + (f"({shown})" if shown else "")


def summary_row(result: dict[str, Any]) -> dict[str, Any]:
    """The flat view of a result used by tables and exports."""
    spec = result["spec"]
    clean, adv = result.get("clean") or {}, result.get("adversarial") or {}
    task = result.get("task") or ("multilabel" if "macro_auc" in clean else "multiclass")
    metric = "macro_auc" if task == "multilabel" else "accuracy"
    audit, verdict = result.get("audit"), result.get("gate")
    return {
        "dataset": dataset_label(spec),
        "model": spec["model"],
        "source": "/".join(filter(None, (spec.get("source_model"), spec.get("source_defense"))))
        or None,
        "defense": spec["defense"],
        "attack": spec["attack"],
        "eps_mv": spec["eps"],
        "seed": spec["seed"],
        "status": result["status"],
        "metric": metric,
        "clean": clean.get(metric),
        "adversarial": adv.get(metric),
        "clean_f1": clean.get("macro_f1"),
        "adv_f1": adv.get("macro_f1"),
        "fooling_rate": (result.get("fooling") or {}).get("fooling_rate"),
        "audit": "-" if audit is None else ("pass" if audit["passed"] else "VIOLATION"),
        "gate": "-" if verdict is None else ("degenerate" if verdict["degenerate"] else "ok"),
        "error": result.get("error"),
    }


def export(results: list[dict[str, Any]], fmt: str) -> str:
    """Render results as csv, json or a Markdown table."""
    if fmt == "json":
        return json.dumps(results, indent=2, default=str)
    rows = [summary_row(r) for r in results]
    cols = list(COLUMNS)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v).replace("|", "\\|")
