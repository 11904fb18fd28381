"""The `ray` executor: a plan's train and cell tasks as Ray tasks with CPU/GPU requests
(`dispatch` drives them). `address` joins a running cluster (`auto`: the one `ray start` made);
none starts a local one for the run. Trained weights travel through Ray's object store as the
bytes of their content-addressed file (verified when read, so a home need not be shared);
results come back to the driver, which alone writes the store. A worker that dies is retried
by Ray, then its cell is stored as failed with the reason."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .artifacts import install_bytes
from .dispatch import Workers, run_on
from .errors import UserError
from .host import get_host
from .matrix import CellTask, OnCell, Plan, TrainTask, compute
from .resources import Resources, resolve_device
from .result import CellResult
from .specs import RunSpec
from .store import Store

RETRIES = 2  # Ray re-runs a task whose worker process died this many times
Context = tuple[str, bool, int]  # home, isolate, torch threads: what every task is given
_homes: dict[tuple[str, bool], Resources] = {}  # a Ray worker's caches, kept across its tasks


def _resources(ctx: Context) -> Resources:
    """This worker's host and caches over `home`, its torch threads set for the next task."""
    import torch

    home, isolate, threads = ctx
    torch.set_num_threads(threads)
    if (home, isolate) not in _homes:
        _homes[home, isolate] = Resources(get_host(), Path(home), isolate)
    return _homes[home, isolate]


def _train(ctx: Context, spec_json: str) -> tuple[str, bytes] | None:
    """Train (or load) one classifier: its weights key and file bytes, for the cells that need
    it wherever they run; None when training failed (those cells try again and store why)."""
    res = _resources(ctx)
    spec = RunSpec.model_validate_json(spec_json)
    try:
        key = res.classifier(spec, resolve_device(spec.device))[1]["key"]
    except Exception:  # noqa: BLE001 — the cell's own attempt records the reason
        return None
    return key, res.weights_path(key).read_bytes()


def _cell(ctx: Context, spec_json: str, *weights: tuple[str, bytes] | None) -> str:
    """One cell as JSON, after putting the trained weights it needs into this node's home."""
    res = _resources(ctx)
    for item in weights:
        if item is not None and not res.weights_path(item[0]).is_file():
            install_bytes(res.weights_path(item[0]), item[1])
    return compute(RunSpec.model_validate_json(spec_json), res).model_dump_json()


class _Ray:
    """`Workers` as Ray tasks; a cell task is given its train tasks' results (object refs)."""

    def __init__(self, ray: Any, ctx: Context, cpus: int, gpus: float) -> None:
        options = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": RETRIES}
        self.ctx, self.trains = ctx, {}
        self.remote_train = ray.remote(_train).options(**options)
        self.remote_cell = ray.remote(_cell).options(**options)

    def train(self, task: TrainTask) -> Future[Any]:
        ref = self.trains[task.key] = self.remote_train.remote(
            self.ctx, task.spec.model_dump_json()
        )
        return ref.future()

    def cell(self, task: CellTask, spec: RunSpec) -> Future[str]:
        refs = [self.trains[k] for k in task.needs if k in self.trains]
        return self.remote_cell.remote(self.ctx, spec.model_dump_json(), *refs).future()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(
            "--executor ray needs Ray: pip install 'ecgarena[ray]' (or use local, pool)"
        ) from None
    return ray


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """`auto`, or a `[ray://]host:port` something listens at (Ray itself would retry a dead
    address for minutes): one line naming the bad value otherwise."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address!r} is not auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise UserError(f"--ray-address {address!r}: no Ray cluster answers there ({e})") from None


@contextmanager
def _open(res: Resources, workers: int, address: str | None, device: str) -> Iterator[Workers]:
    """Join the cluster at `address` or start a local one (stopped afterwards); each task asks
    for 1/`workers` of the cluster's CPUs (and of its GPUs when cells run on CUDA)."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        import torch

        env = {k: v for k, v in os.environ.items() if k.startswith("ECGARENA_")}
        local = {} if address else {"num_cpus": torch.get_num_threads()}
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": env},
                **local,
            )
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise UserError(f"--ray-address {address!r}: cannot join a Ray cluster ({e})") from None
    try:
        total = ray.cluster_resources()
        cpus = max(1, int(total.get("CPU", 1)) // workers)
        on_gpu = device == "cuda" or (device == "auto" and total.get("GPU", 0) > 0)
        gpus = min(1.0, total.get("GPU", 0) / workers) if on_gpu else 0.0
        if device == "cuda" and not gpus:
            raise UserError("--device cuda asked for, but the Ray cluster has no GPU")
        yield _Ray(ray, (str(res.home), res.isolate, cpus), cpus, gpus)
    finally:
        if started:
            ray.shutdown()


def run_ray(
    work: Plan,
    res: Resources,
    store: Store,
    workers: int,
    address: str | None = None,
    force: bool = False,
    on_cell: OnCell | None = None,
) -> list[CellResult]:
    """Run a plan as Ray tasks, `workers` at a time; results in plan order. The same seeds give
    `run_local`'s numbers when it runs with the tasks' thread count (cluster CPUs / workers)."""
    _ray()  # installed, and the address answers, before anything runs
    if address:
        check_address(address)
    device = work.cells[0].spec.device if work.cells else "cpu"
    return run_on(lambda: _open(res, workers, address, device), work, res, store, force, on_cell)
