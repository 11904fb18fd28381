"""Interleaved timing shared by the benchmark scripts: every repeat runs each contender once, in
turn (order reversed on odd repeats), so a load change on a shared machine hits all alike.
Each call is timed twice: wall clock, and this process's CPU time, which a descheduled process
does not accumulate (with one torch thread on CPU it is the work done)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Timings:
    """Wall and CPU seconds and return values of each contender, one entry per timed repeat."""

    times: dict[str, list[float]]
    cpu: dict[str, list[float]]
    values: dict[str, list[object]]


def interleaved(
    contenders: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] = lambda: None,
) -> Timings:
    """Call every contender `warmup` times untimed, then once per repeat, interleaved."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
            sync()
    out = Timings(*({n: [] for n in names} for _ in range(3)))
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start, cpu = time.perf_counter(), time.process_time()
            value = contenders[name]()
            sync()
            out.times[name].append(time.perf_counter() - start)
            out.cpu[name].append(time.process_time() - cpu)
            out.values[name].append(value)
    return out


def looped(fn: Callable[[], object], n: int) -> Callable[[], None]:
    """`fn` called n times in a row: one timed call long enough to pair well with its peer."""

    def calls() -> None:
        for _ in range(n):
            fn()

    return calls


@dataclass
class Ratio:
    """Per-repeat ratio num[i] / den[i] of two wall-clock series measured in the same repeats
    (and of their CPU times if known); `bound`: den is a lower bound, every ratio should be ≥ 1."""

    label: str
    num: list[float]
    den: list[float]
    note: str = ""
    bound: bool = False
    cpu: tuple[list[float], list[float]] | None = None


def per_pair(num: list[float], den: list[float]) -> list[float]:
    """num[i] / den[i], repeat by repeat."""
    return [a / b for a, b in zip(num, den, strict=True)]


def ratio(
    t: Timings,
    label: str,
    name: str,
    ref: str,
    scale: float = 1.0,
    note: str = "",
    bound: bool = False,
) -> Ratio:
    """Contender `name` ÷ (scale × reference `ref`), repeat by repeat, wall and CPU."""
    den, cpu_den = ([scale * s for s in series[ref]] for series in (t.times, t.cpu))
    return Ratio(label, t.times[name], den, note, bound, (t.cpu[name], cpu_den))


def add_common(parser: argparse.ArgumentParser, gpu: bool = True) -> None:
    """The options every script shares: repeats, warm-up calls, threads, device (if `gpu`)."""
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (≥ 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per contender")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    if gpu:
        parser.add_argument("--device", default="cpu", help="cpu | cuda")


def setup(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, torch.device]:
    """Parse the arguments, apply --threads and return them with the device."""
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error("--repeats must be ≥ 5 (the ratios are medians and minima over repeats)")
    if args.threads:
        torch.set_num_threads(args.threads)
    return args, torch.device(getattr(args, "device", "cpu"))


def device_sync(device: torch.device) -> Callable[[], None]:
    """What to call after each timed call so that queued GPU work is counted."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def header(title: str, args: argparse.Namespace, batch: int, device: torch.device) -> None:
    """Print what the figures depend on: torch, threads, batch, dtype, device, repeats."""
    print(title)
    print(
        f"torch {torch.__version__} · threads {torch.get_num_threads()} · batch {batch} · "
        f"{torch.get_default_dtype()} · {device} · {args.repeats} repeats "
        f"(+{args.warmup} warm-up), contenders interleaved"
    )


def report(rows: list[Ratio]) -> None:
    """Print each ratio's median and min (wall, then CPU) with the median wall times of
    numerator and denominator, then the same as one JSON line."""
    head = (
        f"{'ratio':42} {'num ms':>8} {'den ms':>8} {'median':>7} {'min':>7} "
        f"{'cpu med':>7} {'cpu min':>7}  note"
    )
    print(head, "-" * len(head), sep="\n")
    out = {}
    for row in rows:
        wall = per_pair(row.num, row.den)
        cpu = per_pair(*row.cpu) if row.cpu else []
        stats = {"median": statistics.median(wall), "min": min(wall)}
        if cpu:
            stats |= {"cpu_median": statistics.median(cpu), "cpu_min": min(cpu)}
        stats |= {"num_s": statistics.median(row.num), "den_s": statistics.median(row.den)}
        flag = " BELOW 1" if row.bound and min(wall) < 1 else ""
        flag += " (CPU too)" if flag and cpu and min(cpu) < 1 else ""
        cpu_cols = (
            f"{stats['cpu_median']:7.3f} {stats['cpu_min']:7.3f}" if cpu else f"{'—':>7} {'—':>7}"
        )
        print(
            f"{row.label:42} {stats['num_s'] * 1e3:8.1f} {stats['den_s'] * 1e3:8.1f} "
            f"{stats['median']:7.3f} {stats['min']:7.3f} {cpu_cols}  {row.note}{flag}"
        )
        out[row.label] = stats
    print(json.dumps(out, ensure_ascii=False))
