"""Matrix throughput of cheap cells: `--executor local` against `pool --workers 2` and
`ray --workers 2`, and Ray's start-up (not a test).

A matrix of 8 cells (synthetic, cnn × {none, median}, {noise, fgsm} × two budgets) is trained
once; every timed repeat then re-runs all 8 cells with `--force` as a fresh `ecgarena matrix`
process (so each pays its start-up, as a user does; ray starts a local cluster), the executors
interleaved with a process that only starts and stops a local Ray cluster (num_cpus=2) and runs
one empty task. Printed: pool ÷ local and ray ÷ local wall time, per-cell overhead
(wall − Σ attack_s) ÷ cells for each, and Ray's start-up. Workers get 1 torch thread each;
local runs with 2, the machine's cores, its default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable

from timing import Ratio, add_common, header, interleaved, report, setup

CELLS = ["--defenses", "none,median", "--attacks", "noise,fgsm", "--eps", "0.02,0.05"]
RUN = "import sys; from ecgarena.cli import main; sys.argv = ['ecgarena', *sys.argv[1:]]; main()"


def matrix(home: str, records: int, executor: list[str], threads: int) -> Callable[[], float]:
    """One fresh `ecgarena matrix --force` process; returns Σ attack_s of its cells."""
    argv = [*CELLS, "--param", f"synthetic.n_records={records}", "--epochs", "1", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}

    def run() -> float:
        cmd = [sys.executable, "-c", RUN, "matrix", *argv, "--home", home, "--force", *executor]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        cells = json.loads(out.stdout)["cells"]
        assert [c["status"] for c in cells] == ["done"] * 8, [c["status"] for c in cells]
        return sum(c["timings"]["attack_s"] for c in cells)

    return run


RAY_UP = (
    "import ray; ray.init(num_cpus=2, include_dashboard=False, logging_level=40); "
    "ray.get(ray.remote(lambda: 0).remote()); ray.shutdown()"
)


def ray_start_up() -> float:
    """A fresh process that starts a local Ray cluster, runs one empty task and stops it."""
    subprocess.run([sys.executable, "-c", RAY_UP], capture_output=True, check=True)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="synthetic n_records")
    add_common(parser, gpu=False)
    args, device = setup(parser)
    header("ecgarena matrix, 8 cells: local vs pool(2) vs ray(2)", args, 128, device)
    with tempfile.TemporaryDirectory() as home:
        local = matrix(home, args.records, [], 2)
        pool = matrix(home, args.records, ["--executor", "pool", "--workers", "2"], 2)
        on_ray = matrix(home, args.records, ["--executor", "ray", "--workers", "2"], 2)
        local()  # trains both classifiers; every timed run loads them
        contenders = {"local": local, "pool": pool, "ray": on_ray, "ray start-up": ray_start_up}
        t = interleaved(contenders, args.repeats, args.warmup)
    overhead = {
        name: [(w - a) / 8 for w, a in zip(t.times[name], t.values[name], strict=True)]
        for name in ("local", "pool", "ray")
    }
    up = sorted(t.times["ray start-up"])
    print(f"Ray start-up (start, one empty task, stop), median {up[len(up) // 2]:.2f} s")
    print(
        "per-cell overhead beyond the attack, median s: "
        + ", ".join(f"{n} {sorted(v)[len(v) // 2]:.3f}" for n, v in overhead.items())
    )
    report(
        [
            Ratio("pool(2) ÷ local, whole matrix process", t.times["pool"], t.times["local"]),
            Ratio("ray(2) ÷ local, whole matrix process", t.times["ray"], t.times["local"]),
        ]
    )


if __name__ == "__main__":
    main()
