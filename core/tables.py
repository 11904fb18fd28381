"""Flat views of stored results for tables and exports (CSV, JSON, Markdown)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .result import CellResult

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


def select(results: list[CellResult], **where: Any) -> list[CellResult]:
    """Results whose spec matches every given field: a value, or a list of allowed values
    (None: any)."""

    def matches(spec: dict[str, Any], field: str, wanted: Any) -> bool:
        got = spec.get(field)
        return wanted is None or (got in wanted if isinstance(wanted, list) else got == wanted)

    return [r for r in results if all(matches(r.spec, f, w) for f, w in where.items())]


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


def headline_metric(result: CellResult) -> str:
    """The metric a cell is compared on: macro AUROC (multilabel) or accuracy (multiclass)."""
    return "macro_auc" if result.task == "multilabel" else "accuracy"


def summary_row(result: CellResult) -> dict[str, Any]:
    """The flat view of a result used by tables and exports."""
    spec, clean, adv = result.spec, result.clean, result.adversarial
    metric = headline_metric(result)
    return {
        "dataset": dataset_label(spec),
        "model": spec["model"],
        "source": "/".join(filter(None, (spec.get("source_model"), spec.get("source_defense"))))
        or None,
        "defense": spec["defense"],
        "attack": spec["attack"],
        "eps_mv": spec["eps"],
        "seed": spec["seed"],
        "status": result.status,
        "metric": metric,
        "clean": getattr(clean, metric, None),
        "adversarial": getattr(adv, metric, None),
        "clean_f1": clean and clean.macro_f1,
        "adv_f1": adv and adv.macro_f1,
        "fooling_rate": result.fooling and result.fooling.fooling_rate,
        "audit": "-" if result.audit is None else ("pass" if result.passed else "VIOLATION"),
        "gate": "-" if result.gate is None else ("degenerate" if result.gate.degenerate else "ok"),
        "error": result.error,
    }


def export(results: list[CellResult], fmt: str) -> str:
    """Render results as csv, json (the full strict-JSON rows) or a Markdown table."""
    if fmt == "json":
        return json.dumps([r.row() for r in results], indent=2, allow_nan=False)
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


def cutoff_label(result: CellResult) -> str:
    """The frequency the δ-energy share is measured above, named as the audit names it: a
    band-limited threat's band edge (the audit allows its margin above it), else the fixed
    reporting cut-off."""
    from ecgarena.contract import BAND_MARGIN_HZ

    cutoff = result.perturbation.cutoff_hz if result.perturbation else 0.0
    if (result.threat or {}).get("band_hz"):
        return f"{cutoff:g} Hz band edge (audit: > {cutoff + BAND_MARGIN_HZ:g} Hz)"
    return f"{cutoff:g} Hz (reporting cut-off; no band limit)"
