"""The `pool` executor: a plan's train tasks, then each cell as soon as the classifiers it needs
are trained, on N worker processes of this machine. Workers compute; the driver alone writes
the store (one SQLite writer), checks consistency and reports progress, as `run_local` does."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from .claims import Claims
from .host import get_host
from .matrix import (
    CellTask,
    OnCell,
    Plan,
    claim,
    compute,
    failed,
    pending,
    record,
    run_local,
)
from .resources import Resources, resolve_device
from .result import CellResult
from .specs import RunSpec
from .store import Store

_worker: Resources | None = None  # one per worker process, set by `_start`


def _start(home: str, isolate: bool, threads: int) -> None:
    """Worker set-up: its torch threads and its own host and caches over the shared home."""
    import torch

    global _worker
    torch.set_num_threads(threads)
    _worker = Resources(get_host(), Path(home), isolate)


def _train(spec_json: str) -> None:
    """Train (or load) one classifier into the home's weights cache; an error is left for the
    cells that need it, which try again and store the reason."""
    assert _worker is not None
    spec = RunSpec.model_validate_json(spec_json)
    _worker.classifier(spec, resolve_device(spec.device))


def _cell(spec_json: str) -> str:
    """One cell computed in a worker, returned as JSON for the driver to store."""
    assert _worker is not None
    return compute(RunSpec.model_validate_json(spec_json), _worker).model_dump_json()


def _returned(future: Future[str], spec: RunSpec) -> CellResult:
    """A worker's result, or a failed cell naming why the worker gave none (it died)."""
    try:
        return CellResult.model_validate_json(future.result())
    except Exception as e:
        return failed(spec, f"worker failed: {type(e).__name__}: {e}")


Todo = list[tuple[int, CellTask, RunSpec, list[str]]]  # plan index, task, spec, re-run notes


def _claim(todo: Todo, res: Resources, claims: Claims) -> tuple[Todo, Todo]:
    """Split the cells to run into those this process claimed (with the training they need)
    and those another process on the home holds, or whose classifier it is training."""
    mine, held = [], []
    for item in todo:
        (mine if claim(claims, res, item[2], item[1]) is not None else held).append(item)
    return mine, held


def _run_claimed(
    mine: Todo,
    work: Plan,
    res: Resources,
    store: Store,
    pool_size: tuple[int, int],
    claims: Claims,
    results: dict[int, CellResult],
    on_cell: OnCell | None,
) -> None:
    """The pool proper (`pool_size`: workers, threads each): train tasks, then each cell as
    its classifiers are ready, stored by this driver as it returns and its claim released."""
    needed = {key for _, task, _, _ in mine for key in task.needs}
    for task in work.trains:  # decode each dataset once, here, before workers read its cache
        if task.key in needed:
            res.dataset(task.spec).load("train")
    context = multiprocessing.get_context("spawn")  # torch state is not fork-safe
    workers, threads = pool_size
    start = (str(res.home), res.isolate, threads)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=start
    ) as pool:
        trains: dict[str, Future[None]] = {
            t.key: pool.submit(_train, t.spec.model_dump_json())
            for t in work.trains
            if t.key in needed
        }
        running: dict[Future[str], tuple[int, CellTask, list[str]]] = {}
        waiting = list(mine)
        while waiting or running:
            ready = [w for w in waiting if all(trains[k].done() for k in w[1].needs)]
            for item in ready:
                waiting.remove(item)
                i, task, spec, notes = item
                if on_cell:
                    on_cell(task, None)
                running[pool.submit(_cell, spec.model_dump_json())] = (i, task, notes)
            pending_futures = [*running, *(f for f in trains.values() if not f.done())]
            done, _ = wait(pending_futures, return_when=FIRST_COMPLETED)
            for future in done & running.keys():
                i, task, notes = running.pop(future)
                results[i] = record(res, store, _returned(future, task.spec), notes)
                claims.release(task.spec.key())
                if on_cell:
                    on_cell(task, results[i])


def run_pool(
    work: Plan,
    res: Resources,
    store: Store,
    workers: int,
    threads: int,
    force: bool = False,
    on_cell: OnCell | None = None,
) -> list[CellResult]:
    """Run a plan on `workers` processes of `threads` torch threads each; results in plan
    order. The same seeds give `run_local`'s numbers when it runs with the same thread count.
    Cells another process on the home has claimed are left to it and read back when stored
    (or taken over when its heartbeat stops), as `run_local` does."""
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
            _run_claimed(mine, work, res, store, (workers, threads), claims, results, on_cell)
    if held:  # another process holds these: wait for its results, or take over if it died
        later = run_local(Plan((), tuple(t for _, t, _, _ in held)), res, store, force, on_cell)
        results.update(zip((i for i, _, _, _ in held), later, strict=True))
    return [results[i] for i in sorted(results)]
