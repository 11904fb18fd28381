"""The driver of every parallel executor (`pool`, `ray`): a plan's train tasks first, then each
cell as soon as the classifiers it needs are trained, on an executor's `Workers`. Workers
compute; this driver alone writes the store (one SQLite writer), checks consistency, holds the
home's claims and reports progress, as `run_local` does."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import AbstractContextManager
from typing import Any, Protocol

from .claims import Claims
from .matrix import CellTask, OnCell, Plan, TrainTask, claim, failed, pending, record, run_local
from .resources import Resources
from .result import CellResult
from .specs import RunSpec
from .store import Store


class Workers(Protocol):
    """Where an executor's tasks run: each call starts one and returns its future."""

    def train(self, task: TrainTask) -> Future[Any]:
        """Train (or load) one classifier into the home's weights cache. A failure is left to
        the cells that need it: they try again and store the reason."""
        ...

    def cell(self, task: CellTask, spec: RunSpec) -> Future[str]:
        """Compute one cell (called once its train tasks are done): its `CellResult` JSON."""
        ...


OpenWorkers = Callable[[], AbstractContextManager[Workers]]
Todo = list[tuple[int, CellTask, RunSpec, list[str]]]  # plan index, task, spec, re-run notes


def returned(future: Future[str], spec: RunSpec) -> CellResult:
    """A worker's result, or a failed cell naming why the worker gave none (it died)."""
    try:
        return CellResult.model_validate_json(future.result())
    except Exception as e:
        return failed(spec, f"worker failed: {type(e).__name__}: {e}")


def _claim(todo: Todo, res: Resources, claims: Claims) -> tuple[Todo, Todo]:
    """Split the cells to run into those this process claimed (with the training they need)
    and those another process on the home holds, or whose classifier it is training."""
    mine, held = [], []
    for item in todo:
        (mine if claim(claims, res, item[2], item[1]) is not None else held).append(item)
    return mine, held


def _run_claimed(
    mine: Todo,
    needed: list[TrainTask],
    res: Resources,
    store: Store,
    workers: Workers,
    claims: Claims,
    results: dict[int, CellResult],
    on_cell: OnCell | None,
) -> None:
    """The `needed` train tasks, then each cell as its classifiers are ready, stored by this
    driver as it returns and its claim released."""
    trains = {t.key: workers.train(t) for t in needed}
    running: dict[Future[str], tuple[int, CellTask, list[str]]] = {}
    waiting = list(mine)
    while waiting or running:
        ready = [w for w in waiting if all(trains[k].done() for k in w[1].needs)]
        for item in ready:
            waiting.remove(item)
            i, task, spec, notes = item
            if on_cell:
                on_cell(task, None)
            running[workers.cell(task, spec)] = (i, task, notes)
        pending_futures = [*running, *(f for f in trains.values() if not f.done())]
        done, _ = wait(pending_futures, return_when=FIRST_COMPLETED)
        for future in done & running.keys():
            i, task, notes = running.pop(future)
            results[i] = record(res, store, returned(future, task.spec), notes)
            claims.release(task.spec.key())
            if on_cell:
                on_cell(task, results[i])


def run_on(
    open_workers: OpenWorkers,
    work: Plan,
    res: Resources,
    store: Store,
    force: bool = False,
    on_cell: OnCell | None = None,
) -> list[CellResult]:
    """Run a plan on the workers `open_workers` starts (only when a cell must run); results
    in plan order. Cells another process on the home has claimed are left to it and read back
    when stored (or taken over when its heartbeat stops), as `run_local` does."""
    results: dict[int, CellResult] = {}
    todo: Todo = []
    for i, task in enumerate(work.cells):
        spec, stored, notes = pending(res, store, task.spec, force)
        if stored is None:
            todo.append((i, task, spec, notes))
            continue
        results[i] = stored
        if on_cell:
            on_cell(task, None)
            on_cell(task, stored)
    with Claims(store.path).alive() as claims:
        mine, held = _claim(todo, res, claims)
        if mine:
            keys = {key for _, task, _, _ in mine for key in task.needs}
            needed = [t for t in work.trains if t.key in keys]
            for train in needed:  # decode each dataset once, before workers read its cache
                res.dataset(train.spec).load("train")
            with open_workers() as workers:
                _run_claimed(mine, needed, res, store, workers, claims, results, on_cell)
    if held:  # another process holds these: wait for its results, or take over if it died
        later = run_local(Plan((), tuple(t for _, t, _, _ in held)), res, store, force, on_cell)
        results.update(zip((i for i, _, _, _ in held), later, strict=True))
    return [results[i] for i in sorted(results)]
