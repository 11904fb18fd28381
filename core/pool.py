"""The `pool` executor: a plan on N worker processes of this machine (`dispatch` drives it),
each optionally pinned to one device of `--devices` (one worker per GPU)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .dispatch import Workers, run_on
from .errors import UserError
from .host import get_host
from .matrix import CellTask, OnCell, Plan, TrainTask, compute
from .resources import Resources, resolve_device
from .result import CellResult
from .specs import RunSpec
from .store import Store

_worker: Resources | None = None  # one per worker process, set by `_start`


def check_devices(devices: list[str]) -> list[str]:
    """`cpu` or `cuda:N` of a GPU this machine has, each once (one line naming a bad one)."""
    import torch

    count = torch.cuda.device_count()
    valid = ["cpu", *(f"cuda:{i}" for i in range(count))]
    for name in devices:
        if name not in valid:
            raise UserError(f"--devices {name!r} is not a device here (valid: {', '.join(valid)})")
    if len(set(devices)) < len(devices) and "cpu" not in devices:
        raise UserError(f"--devices {','.join(devices)} names a GPU twice (one worker per GPU)")
    return devices


def _start(home: str, isolate: bool, threads: int, devices: Any) -> None:
    """Worker set-up: its torch threads, its device (the next of `devices`, a queue) and its
    own host and caches over the shared home."""
    import torch

    global _worker
    torch.set_num_threads(threads)
    device = devices.get() if devices is not None else "cpu"
    if device.startswith("cuda:"):  # "cuda" in a cell's spec now means this GPU
        torch.cuda.set_device(int(device.removeprefix("cuda:")))
    _worker = Resources(get_host(), Path(home), isolate)


def _train(spec_json: str) -> None:
    """Train (or load) one classifier into the home's weights cache."""
    assert _worker is not None
    spec = RunSpec.model_validate_json(spec_json)
    _worker.classifier(spec, resolve_device(spec.device))


def _cell(spec_json: str) -> str:
    """One cell computed in a worker, returned as JSON for the driver to store."""
    assert _worker is not None
    return compute(RunSpec.model_validate_json(spec_json), _worker).model_dump_json()


class _Pool:
    """`Workers` on a process pool."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    def train(self, task: TrainTask) -> Future[None]:
        return self.pool.submit(_train, task.spec.model_dump_json())

    def cell(self, task: CellTask, spec: RunSpec) -> Future[str]:
        return self.pool.submit(_cell, spec.model_dump_json())


@contextmanager
def _open(res: Resources, workers: int, threads: int, devices: list[str]) -> Iterator[Workers]:
    """`workers` spawned processes (torch state is not fork-safe) of `threads` threads each."""
    context = multiprocessing.get_context("spawn")
    queue = None
    if devices:
        queue = context.Queue()
        for name in devices:
            queue.put(name)
    start = (str(res.home), res.isolate, threads, queue)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=start
    ) as pool:
        yield _Pool(pool)


def run_pool(
    work: Plan,
    res: Resources,
    store: Store,
    workers: int,
    threads: int,
    force: bool = False,
    on_cell: OnCell | None = None,
    devices: list[str] | None = None,
) -> list[CellResult]:
    """Run a plan on `workers` processes of `threads` torch threads each (with `devices`: one
    worker per device, pinned to it); results in plan order. The same seeds give `run_local`'s
    numbers when it runs with the same thread count."""
    if devices:
        workers = len(check_devices(devices))
    return run_on(
        lambda: _open(res, workers, threads, devices or []), work, res, store, force, on_cell
    )
