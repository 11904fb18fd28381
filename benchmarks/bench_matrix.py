"""Matrix throughput of cheap cells: `--executor local` against `--executor pool --workers 2`
(not a test).

A matrix of 8 cells (synthetic, cnn × {none, median}, {noise, fgsm} × two budgets) is trained
once; every timed repeat then re-runs all 8 cells with `--force` as a fresh `ecgarena matrix`
process (so each pays its start-up, as a user does), the two executors interleaved. Printed:
pool ÷ local wall time, and per-cell overhead (wall − Σ attack_s) ÷ cells for each. Workers
get 1 torch thread each; local runs with 2, the machine's cores, its default.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="synthetic n_records")
    add_common(parser, gpu=False)
    args, device = setup(parser)
    header("ecgarena matrix, 8 cells: local vs pool(2)", args, 128, device)
    with tempfile.TemporaryDirectory() as home:
        local = matrix(home, args.records, [], 2)
        pool = matrix(home, args.records, ["--executor", "pool", "--workers", "2"], 2)
        local()  # trains both classifiers; every timed run loads them
        t = interleaved({"local": local, "pool": pool}, args.repeats, args.warmup)
    overhead = {
        name: [(w - a) / 8 for w, a in zip(t.times[name], t.values[name], strict=True)]
        for name in ("local", "pool")
    }
    print(
        "per-cell overhead beyond the attack, median s: "
        + ", ".join(f"{n} {sorted(v)[len(v) // 2]:.3f}" for n, v in overhead.items())
    )
    report([Ratio("pool(2) ÷ local, whole matrix process", t.times["pool"], t.times["local"])])


if __name__ == "__main__":
    main()
