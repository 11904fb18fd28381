"""The results store: SQLite, one row per finished (or failed) cell, never overwritten.

A re-run with `--force` appends a new row for the same cell key; readers take the newest.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from .metrics import robust_score

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
    metric = "macro_auc" if "macro_auc" in clean else "accuracy"
    audit = result.get("audit")
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


def variant_labels(results: list[dict[str, Any]], kind: str) -> list[str]:
    """`kind`'s name per result, with its options shown when the results hold several option
    sets of that plugin (e.g. `dna(variant=fdec)` next to `dna(variant=cor)`)."""
    specs = [r["spec"] for r in results]
    sets: dict[str, set[str]] = {}
    for s in specs:
        sets.setdefault(s[kind], set()).add(json.dumps(s.get(f"{kind}_params", {}), sort_keys=True))
    labels = []
    for s in specs:
        options = s.get(f"{kind}_params", {})
        shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        labels.append(f"{s[kind]}({shown})" if len(sets[s[kind]]) > 1 and shown else s[kind])
    return labels


def rest(spec: dict[str, Any], *also: str) -> str:
    """The spec fields, other than seed and where things run, that must match for cells to be
    aggregated together (training, record cap, source, ...)."""
    skip = {"seed", "device", "data_dir", "eval_data_dir", *also}
    return json.dumps({k: v for k, v in spec.items() if k not in skip}, sort_keys=True)


PIVOT_COLUMNS = ("clean F1", "attacked F1", "gap %", "clean AUC", "attacked AUC", "seeds")


def pivot(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, model, defense, attack, ε) with mean ± std over seeds of clean and
    attacked macro F1 and macro AUC, and the F1 gap in % of clean (the CPR seed's Table 1)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    done = [r for r in results if r["status"] == "done"]
    labels = zip(variant_labels(done, "defense"), variant_labels(done, "attack"))
    for r, (defense, attack) in zip(done, labels):
        s = r["spec"]
        key = (dataset_label(s), s["model"], defense, attack, json.dumps(s["eps"]), rest(s))
        groups.setdefault(key, []).append(r)
    rows = []
    for (dataset, model, defense, attack, eps, _), cells in groups.items():
        clean_f1 = _values(cells, "clean", "macro_f1")
        adv_f1 = _values(cells, "adversarial", "macro_f1")
        gaps = [100 * (c - a) / c if c else float("nan") for c, a in zip(clean_f1, adv_f1)]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "defense": defense,
                "attack": attack,
                "eps_mv": json.loads(eps),
                "clean F1": _mean_std(clean_f1),
                "attacked F1": _mean_std(adv_f1),
                "gap %": _mean_std(gaps),
                "clean AUC": _mean_std(_values(cells, "clean", "macro_auc")),
                "attacked AUC": _mean_std(_values(cells, "adversarial", "macro_auc")),
                "seeds": sorted(c["spec"]["seed"] for c in cells),
            }
        )
    return rows


ROBUST_COLUMNS = ("ε grid (mV)", "clean ACC", "ACC_robust", "clean F1", "F1_robust", "seeds")


def robust(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ACC_robust and F1_robust (METHODS.md §10) per (dataset, model, defense, attack), mean ±
    std over seeds: each seed's curve is its clean score at ε = 0, then the attacked score at
    every stored scalar budget of that attack (same options)."""
    curves: dict[tuple, dict[int, list[dict[str, Any]]]] = {}
    done = [r for r in results if r["status"] == "done" and isinstance(r["spec"]["eps"], float)]
    labels = zip(variant_labels(done, "defense"), variant_labels(done, "attack"))
    for r, (defense, attack) in zip(done, labels):
        s = r["spec"]
        key = (dataset_label(s), s["model"], defense, attack, rest(s, "eps"))
        curves.setdefault(key, {}).setdefault(s["seed"], []).append(r)
    rows = []
    for (dataset, model, defense, attack, _), by_seed in curves.items():
        scores: dict[str, list[float]] = {"accuracy": [], "macro_f1": []}
        grid: list[float] = []
        for cells in by_seed.values():
            cells = sorted(
                (c for c in cells if c["spec"]["eps"] > 0), key=lambda c: c["spec"]["eps"]
            )
            if not cells:
                continue
            grid = [0.0] + [c["spec"]["eps"] for c in cells]
            for metric, got in scores.items():
                clean = statistics.fmean(c["clean"][metric] for c in cells)
                got.append(robust_score(grid, [clean] + [c["adversarial"][metric] for c in cells]))
        if not scores["accuracy"]:
            continue
        clean_cells = [c for cells in by_seed.values() for c in cells]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "defense": defense,
                "attack": attack,
                "eps_mv": None,
                "ε grid (mV)": grid,
                "clean ACC": _mean_std(_values(clean_cells, "clean", "accuracy")),
                "ACC_robust": _mean_std(scores["accuracy"]),
                "clean F1": _mean_std(_values(clean_cells, "clean", "macro_f1")),
                "F1_robust": _mean_std(scores["macro_f1"]),
                "seeds": sorted(by_seed),
            }
        )
    return rows


def _values(cells: list[dict[str, Any]], part: str, metric: str) -> list[float]:
    return [c[part].get(metric, float("nan")) for c in cells]


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v == v]
    if not finite:
        return (float("nan"), float("nan"))
    return (statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0)
