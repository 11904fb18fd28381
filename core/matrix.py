"""The matrix: expand a `MatrixSpec`, check every name and option before anything runs, plan
it as train tasks (one per distinct defended classifier) and cell tasks that depend on them,
and run a plan locally, storing each cell as it finishes. The CLI only parses and renders."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .cell import resolve, run_cell
from .checks import consistency
from .claims import Claims
from .contract import build_contract
from .host import Host
from .provenance import stale_because, versions
from .resources import Resources
from .result import CellResult
from .specs import MatrixSpec, RunSpec
from .store import Store


@dataclass(frozen=True)
class TrainTask:
    """Build and train (or load) one defended classifier: its weights key and a spec naming it."""

    key: str
    spec: RunSpec


@dataclass(frozen=True)
class CellTask:
    """One cell and the train tasks (weights keys) it needs: its target and transfer source."""

    spec: RunSpec
    needs: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """What a matrix runs, in order: every executor schedules these same tasks."""

    trains: tuple[TrainTask, ...]
    cells: tuple[CellTask, ...]


OnCell = Callable[[CellTask, "CellResult | None"], None]  # before (None) and after each cell


def check_pieces(spec: MatrixSpec, host: Host) -> None:
    """Every name of a matrix is registered (an unknown one fails before any training)."""
    for kind, names in (
        ("datasets", spec.datasets),
        ("models", spec.models),
        ("defenses", spec.defenses),
        ("attacks", spec.attacks),
        ("models", [spec.source_model] if spec.source_model else []),
        ("defenses", [spec.source_defense] if spec.source_defense else []),
        ("datasets", [spec.eval_dataset] if spec.eval_dataset else []),
        ("models", [m for m, _ in spec.pairs or []]),
        ("defenses", [f for _, f in spec.pairs or []]),
    ):
        for name in names:
            host.get(kind, name)


def check_options(cells: list[RunSpec], res: Resources) -> None:
    """Every plugin option and budget of every cell validates (one line naming the bad value)
    before anything trains: a typo must not store a failed row per cell on every re-run."""
    for cell in cells:
        for src in (cell, cell.source()):
            res.host.create("models", src.model, src.model_params)
            res.host.create("defenses", src.defense, src.defense_params)
        attack = res.host.create("attacks", cell.attack, cell.attack_params)
        build_contract(attack, cell.eps, res.dataset(cell).info.leads)  # e.g. a per-lead length
        if cell.eval_dataset:
            res.eval_target(cell)


def plan(spec: MatrixSpec, res: Resources) -> Plan:
    """The matrix's cells (budgets resolved) and the distinct classifiers they train on."""
    check_pieces(spec, res.host)
    cells = [resolve(res.host, cell) for cell in spec.cells()]
    check_options(cells, res)
    trains: dict[str, TrainTask] = {}
    tasks = []
    for cell in cells:
        needs = []
        for piece in (cell, cell.source()):
            key = res.weights_key(piece)[0]
            trains.setdefault(key, TrainTask(key, piece))
            needs.append(key)
        tasks.append(CellTask(cell, tuple(dict.fromkeys(needs))))
    return Plan(tuple(trains.values()), tuple(tasks))


def standing(res: Resources, store: Store, spec: RunSpec) -> tuple[CellResult | None, str | None]:
    """The stored result that still stands for a cell, or None and why it must run again
    (None too when it never finished: its newest row is missing or failed)."""
    stored = store.latest_done(spec.key())
    if stored is None:
        return None, None
    stale = stale_because(stored.row(), res.data_key(spec), versions(res.host, spec))
    return (stored, None) if stale is None else (None, f"{stale} since the stored result")


def pending(
    res: Resources, store: Store, spec: RunSpec, force: bool
) -> tuple[RunSpec, CellResult | None, list[str]]:
    """A cell's resolved spec, the stored result that stands for it (then nothing runs) and
    the notes a re-run carries (why the old row no longer stands)."""
    spec = resolve(res.host, spec)
    stored, why = (None, None) if force else standing(res, store, spec)
    if stored is not None:
        return spec, stored.model_copy(update={"status": "skipped"}), []
    return spec, None, [f"{why}: re-run (the old row is kept)"] if why else []


def failed(spec: RunSpec, error: str, trace: str | None = None) -> CellResult:
    """The stored form of a cell that produced no result, with its reason."""
    return CellResult(
        key=spec.key(),
        status="failed",
        spec=spec.model_dump(mode="json"),
        error=error,
        traceback=trace,
    )


def compute(spec: RunSpec, res: Resources) -> CellResult:
    """Run one cell; an exception becomes a failed result with its reason (any executor)."""
    try:
        return run_cell(spec, res)
    except Exception as e:
        return failed(spec, f"{type(e).__name__}: {e}", traceback.format_exc(limit=8))


def record(res: Resources, store: Store, result: CellResult, notes: list[str]) -> CellResult:
    """Store a computed cell (the one writer: the driver), never over an older row, with the
    cross-cell consistency check, and tell the result observers."""
    if result.status == "done":
        result.warnings += notes + consistency(res.host, store, result)
    store.add(result)
    result.warnings += res.host.notify_result(result.row())
    return result


def run_and_store(
    res: Resources, store: Store, spec: RunSpec, force: bool = False, keep_going: bool = False
) -> CellResult:
    """Run a cell unless a stored result still stands for it (then `skipped`); store the done
    or failed result and tell the result observers (`keep_going`: a failure is stored, not
    raised)."""
    spec, stored, notes = pending(res, store, spec, force)
    if stored is not None:
        return stored
    result = compute(spec, res) if keep_going else run_cell(spec, res)
    return record(res, store, result, notes)


def run_local(
    work: Plan,
    res: Resources,
    store: Store,
    force: bool = False,
    on_cell: OnCell | None = None,
    wait_s: float = 1.0,
) -> list[CellResult]:
    """Run a plan in this process in plan order (each cell trains what it needs on first use,
    as a single run does); `on_cell` is called before (None) and after. Another process on
    the same home may hold a cell or the training of a classifier it needs (`Claims`): such a
    cell waits for a later pass, and is read from the store once the other process stored it,
    or taken over when that process's heartbeat stops."""
    results: dict[int, CellResult] = {}
    waiting = list(enumerate(work.cells))
    with Claims(store.path).alive() as claims:
        while waiting:
            later = [w for w in waiting if not _try(w, res, store, claims, force, results, on_cell)]
            if len(later) == len(waiting):
                time.sleep(wait_s)  # all held by others: wait for them to finish or go stale
            waiting = later
    return [results[i] for i in sorted(results)]


def claim(claims: Claims, res: Resources, spec: RunSpec, task: CellTask) -> list[str] | None:
    """Claim a cell and the training of each classifier it needs that is not cached yet; the
    claimed tasks, or None when another live process holds one (what this call took is given
    back; what this process held before, e.g. a training another of its cells needs, is kept)."""
    before = set(claims.held)
    tasks = [spec.key(), *(f"train:{k}" for k in task.needs if not res.weights_path(k).is_file())]
    if all(claims.take(t) for t in tasks):
        return tasks
    for t in set(tasks) - before:
        claims.release(t)
    return None


def _try(
    item: tuple[int, CellTask],
    res: Resources,
    store: Store,
    claims: Claims,
    force: bool,
    results: dict[int, CellResult],
    on_cell: OnCell | None,
) -> bool:
    """Run (or skip) one cell unless another process holds it or a classifier it must train;
    False: try again later."""
    i, task = item
    spec, stored, notes = pending(res, store, task.spec, force)
    held = None if stored is not None else claim(claims, res, spec, task)
    if stored is None and held is None:
        return False
    if on_cell:
        on_cell(task, None)
    if held is not None:
        stored = record(res, store, compute(spec, res), notes)
        for t in held:
            claims.release(t)
    results[i] = stored
    if on_cell:
        on_cell(task, stored)
    return True
