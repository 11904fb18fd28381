"""Aggregate views over stored cells: the pivot (the CPR seed's Table 1) and ACC_robust.

Both aggregate only cells that differ in nothing but the seed, leave out cells that broke
their threat model (and say how many), mark degenerate clean models, and add the trivial
baseline's row. A single seed shows its bootstrap interval, never "± 0.000".
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError
from .metrics import robust_score
from .result import CellResult
from .tables import dataset_label


@dataclass
class View:
    """The rows of an aggregate view and what was left out of it."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    left_out: int = 0  # cells that violated their threat model

    def note(self) -> str:
        return (
            f"{self.left_out} cell(s) that violated their threat model left out "
            "(--include-violations keeps them)"
            if self.left_out
            else ""
        )


def aggregate(values: list[float], ci: list[float] | None = None) -> dict[str, Any]:
    """Mean over seeds with its std (None for one seed), the seed count, and for one seed the
    cell's bootstrap interval."""
    finite = [v for v in values if v is not None and v == v]
    if not finite:
        return {"mean": None, "std": None, "n": 0, "ci": None}
    one = len(finite) == 1
    return {
        "mean": statistics.fmean(finite),
        "std": None if one else statistics.stdev(finite),
        "n": len(finite),
        "ci": ci if one else None,
    }


def variant_labels(results: list[CellResult], kind: str) -> list[str]:
    """`kind`'s name per result, with its options shown when the results hold several option
    sets of that plugin (e.g. `dna(variant=fdec)` next to `dna(variant=cor)`)."""
    specs = [r.spec for r in results]
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


def usable(results: list[CellResult], include_violations: bool) -> tuple[list, int]:
    """Finished cells, without those that violated their threat model unless asked."""
    done = [r for r in results if r.status in ("done", "skipped")]
    kept = [r for r in done if include_violations or r.passed]
    return kept, len(done) - len(kept)


def clean_model(cells: list[CellResult]) -> str:
    """`ok`, or `DEGENERATE` with how many of the seeds' clean models failed the gate."""
    bad = sum(c.gate is not None and c.gate.degenerate for c in cells)
    gated = sum(c.gate is not None for c in cells)
    if not gated:
        return "-"
    return "ok" if not bad else f"DEGENERATE ({bad} of {len(cells)})"


def score(result: CellResult, part: str, metric: str) -> float | None:
    """One metric of a cell's clean or attacked scores (None when it has none)."""
    return getattr(getattr(result, part), metric, None)


def _metric(cells: list[CellResult], part: str, metric: str) -> dict[str, Any]:
    values = [score(c, part, metric) for c in cells]
    intervals = cells[0].intervals
    ci = getattr(intervals, part).get(metric) if intervals else None
    return aggregate(values, ci)


PIVOT_COLUMNS = (
    "clean F1",
    "attacked F1",
    "gap %",
    "clean F1 (tuned)",
    "clean AUC",
    "attacked AUC",
    "seeds",
    "clean model",
)


def pivot(results: list[CellResult], include_violations: bool = False) -> View:
    """One row per (dataset, model, defense, attack, ε) with clean and attacked macro F1 (at
    0.5, and with val-tuned thresholds) and macro AUC over seeds, the F1 gap in % of clean,
    and one trivial-baseline row per dataset and evaluated record set."""
    done, left_out = usable(results, include_violations)
    groups: dict[tuple, list[CellResult]] = {}
    trivial: dict[str, dict[str, Any]] = {}
    labels = zip(variant_labels(done, "defense"), variant_labels(done, "attack"))
    for r, (defense, attack) in zip(done, labels):
        s = r.spec
        key = (dataset_label(s), s["model"], defense, attack, json.dumps(s["eps"]), rest(s))
        groups.setdefault(key, []).append(r)
        if r.trivial and r.clean:
            records = f"{dataset_label(s)} ({r.clean.n} records)"
            trivial.setdefault(records, r.trivial)
    rows = []
    for (dataset, model, defense, attack, eps, _), cells in groups.items():
        clean_f1 = [score(c, "clean", "macro_f1") for c in cells]
        adv_f1 = [score(c, "adversarial", "macro_f1") for c in cells]
        gaps = [100 * (c - a) / c if c else None for c, a in zip(clean_f1, adv_f1)]
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "defense": defense,
                "attack": attack,
                "eps_mv": json.loads(eps),
                "clean F1": _metric(cells, "clean", "macro_f1"),
                "attacked F1": _metric(cells, "adversarial", "macro_f1"),
                "gap %": aggregate(gaps),
                "clean F1 (tuned)": _metric(cells, "clean", "macro_f1_tuned"),
                "clean AUC": _metric(cells, "clean", "macro_auc"),
                "attacked AUC": _metric(cells, "adversarial", "macro_auc"),
                "seeds": len(cells),
                "seed list": sorted(c.spec["seed"] for c in cells),
                "clean model": clean_model(cells),
            }
        )
    for records, t in trivial.items():
        f1, auc = aggregate([t["macro_f1"]]), aggregate([t["macro_auc"]])
        rows.append(
            {
                "dataset": records,
                "model": "-",
                "defense": f"trivial: {t['predictor']}",
                "attack": "-",
                "eps_mv": None,
                "clean F1": f1,
                "attacked F1": f1,
                "gap %": aggregate([0.0]),
                "clean F1 (tuned)": f1,
                "clean AUC": auc,
                "attacked AUC": auc,
                "seeds": 0,
                "seed list": [],
                "clean model": "trivial",
            }
        )
    return View(rows, left_out)


ROBUST_COLUMNS = (
    "ε grid (mV)",
    "clean ACC",
    "ACC_robust",
    "clean F1",
    "F1_robust",
    "seeds",
    "clean model",
)


def _curves(done: list[CellResult]) -> dict[tuple, dict[int, list[CellResult]]]:
    """Cells per (dataset, model, defense, attack, rest) and seed, scalar budgets only."""
    curves: dict[tuple, dict[int, list[CellResult]]] = {}
    labels = zip(variant_labels(done, "defense"), variant_labels(done, "attack"))
    for r, (defense, attack) in zip(done, labels):
        s = r.spec
        key = (dataset_label(s), s["model"], defense, attack, rest(s, "eps"))
        curves.setdefault(key, {}).setdefault(s["seed"], []).append(r)
    return curves


def _grid(
    key: tuple, by_seed: dict[int, list[CellResult]], grid: list[float] | None
) -> dict[int, list[CellResult]]:
    """Each seed's cells on the row's ε grid: `grid` when given (every seed must hold it),
    else the stored budgets, which must be the same for every seed."""
    out: dict[int, list[CellResult]] = {}
    for seed, cells in by_seed.items():
        have = {c.spec["eps"]: c for c in cells if c.spec["eps"] > 0}
        wanted = sorted(have) if grid is None else sorted(e for e in grid if e > 0)
        missing = [e for e in wanted if e not in have]
        if missing:
            raise UserError(
                f"{key[2]}/{key[3]} seed {seed} has no stored cell at ε {missing} mV "
                f"(stored: {sorted(have)})"
            )
        out[seed] = [have[e] for e in wanted]
    grids = {tuple(c.spec["eps"] for c in cells) for cells in out.values()}
    if len(grids) > 1:
        raise UserError(
            f"{key[2]}/{key[3]}: seeds were run over different ε grids {sorted(grids)}; "
            "pass --grid with budgets every seed has"
        )
    return out


def robust_columns(eps_max: list[float] | None = None) -> tuple[str, ...]:
    """ROBUST_COLUMNS with, after F1_robust, ACC/F1_robust over the grid up to each ε_max."""
    extra = tuple(c for e in eps_max or [] for c in (f"ACC_robust ε≤{e:g}", f"F1_robust ε≤{e:g}"))
    cut = ROBUST_COLUMNS.index("F1_robust") + 1
    return ROBUST_COLUMNS[:cut] + extra + ROBUST_COLUMNS[cut:]


def _cut(key: tuple, eps: list[float], eps_max: float) -> int:
    """How many points of the curve `eps` (0 first) lie at or below `eps_max`, which must be
    one of its budgets: the area is normalised by ε_max, so the curve has to reach it."""
    at = [i for i, e in enumerate(eps) if i and math.isclose(e, eps_max, rel_tol=1e-9)]
    if not at:
        raise UserError(
            f"ε_max {eps_max:g} mV is not a budget of the {key[2]}/{key[3]} grid {eps} on "
            f"{key[0]}: truncate at one of {eps[1:]}"
        )
    return at[0] + 1


def robust(
    results: list[CellResult],
    include_violations: bool = False,
    grid: list[float] | None = None,
    eps_max: list[float] | None = None,
) -> View:
    """ACC_robust and F1_robust (METHODS.md §10) per (dataset, model, defense, attack), mean ±
    std over seeds: each seed's curve is its clean score at ε = 0, then the attacked score at
    every budget of the grid. Rows on one dataset and attack are ranked against each other, so
    they must share one ε grid; otherwise this refuses and names the grids.

    Each `eps_max` (mV, a budget of every row's grid) adds columns `ACC_robust ε≤e` and
    `F1_robust ε≤e`: the same formula over the curve truncated at e and normalised by e (the
    CASLCNet paper's MIT-BIH values reproduce only with ε_max 0.1, not the 0.3 it states)."""
    done, left_out = usable(results, include_violations)
    done = [r for r in done if isinstance(r.spec["eps"], float)]
    rows, grids = [], {}
    for key, by_seed in _curves(done).items():
        per_seed = {s: c for s, c in _grid(key, by_seed, grid).items() if c}
        if not per_seed:
            continue
        eps = [0.0] + [c.spec["eps"] for c in next(iter(per_seed.values()))]
        grids.setdefault((key[0], key[3]), {})[f"{key[1]}/{key[2]}"] = eps
        cuts = {"": len(eps)} | {f" ε≤{e:g}": _cut(key, eps, e) for e in eps_max or []}
        scores: dict[tuple[str, str], list[float]] = {}
        for cells in per_seed.values():
            for metric in ("accuracy", "macro_f1"):
                clean = statistics.fmean(score(c, "clean", metric) for c in cells)
                curve = [clean] + [score(c, "adversarial", metric) for c in cells]
                for suffix, n in cuts.items():
                    got = robust_score(eps[:n], curve[:n])
                    scores.setdefault((metric, suffix), []).append(got)
        cells = [c for seed_cells in per_seed.values() for c in seed_cells]
        firsts = [seed_cells[0] for seed_cells in per_seed.values()]  # one clean model a seed
        row = {
            "dataset": key[0],
            "model": key[1],
            "defense": key[2],
            "attack": key[3],
            "eps_mv": None,
            "ε grid (mV)": eps,
            "clean ACC": _metric(firsts, "clean", "accuracy"),
            "ACC_robust": aggregate(scores[("accuracy", "")]),
            "clean F1": _metric(firsts, "clean", "macro_f1"),
            "F1_robust": aggregate(scores[("macro_f1", "")]),
        }
        for suffix in list(cuts)[1:]:
            row[f"ACC_robust{suffix}"] = aggregate(scores[("accuracy", suffix)])
            row[f"F1_robust{suffix}"] = aggregate(scores[("macro_f1", suffix)])
        row |= {
            "seeds": len(per_seed),
            "seed list": sorted(per_seed),
            "clean model": clean_model(cells),
        }
        rows.append(row)
    for (dataset, attack), by_row in grids.items():
        if len({tuple(g) for g in by_row.values()}) > 1:
            shown = "; ".join(f"{row} {g}" for row, g in by_row.items())
            raise UserError(
                f"ACC_robust rows on {dataset} under {attack!r} use different ε grids and "
                f"cannot be ranked: {shown}. Pass --grid with budgets every row has, or filter."
            )
    return View(rows, left_out)
