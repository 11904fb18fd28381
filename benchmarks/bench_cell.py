"""What a cell costs beyond its attack, in time and memory (not a test).

1. `ecgarena run --attack fgsm` (synthetic data, cnn, weights cached, --force) in-process through
   Typer's CliRunner, interleaved with a bare call of the same attack plugin on the same test
   records in the core's batches of 128 (a cnn of the same shape, untrained: fgsm's cost does
   not depend on the weights). Ratios: (timings.total_s − attack_s) ÷ bare attack, (CLI call
   wall − attack_s) ÷ bare attack, and attack_s (batched, audited) ÷ bare attack (≥ 1).
2. Peak RSS (ru_maxrss) of a fresh process running the cell, against a fresh process that only
   imports the CLI and loads the plugins, and the MiB of the test split the cell loads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ecgarena import AttackContext, Classifier, Host, ThreatModel
from ecgarena.cli import app
from timing import Ratio, add_common, header, interleaved, per_pair, report, setup
from typer.testing import CliRunner

BATCH = 128  # records per attack call in a cell (the core's ATTACK_BATCH)
RSS = "import resource, sys\n{body}\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
CELL = "from typer.testing import CliRunner\nfrom ecgarena.cli import app\nr = CliRunner().invoke(app, sys.argv[1:])\nassert r.exit_code == 0, r.output"
IMPORT_ONLY = "from ecgarena.cli import app\nfrom ecgarena import Host\nHost()"


def invoke(argv: list[str]) -> dict[str, Any]:
    """Run `ecgarena ARGV --json` in this process; its result dict."""
    result = CliRunner().invoke(app, [*argv, "--json"])
    if result.exit_code != 0:
        raise SystemExit(f"ecgarena {' '.join(argv)} failed ({result.exit_code}):\n{result.output}")
    return json.loads(result.stdout)


def bare_attack(
    home: Path, options: dict[str, Any], cell: dict[str, Any]
) -> tuple[Callable[[], None], float]:
    """The cell's attack on its test records, batched as the core does, without the cell; and
    the MiB of the test split's arrays (x and y)."""
    host = Host()
    data = host.create("datasets", "synthetic", {**options, "cache_dir": home / "cache"})
    info, test = data.info, data.load("test")
    x = torch.from_numpy(np.array(test.x, np.float32))
    y = torch.from_numpy(np.array(test.y, np.float32))
    net = host.create("models", "cnn").build(x.shape[1], x.shape[2], len(info.classes))
    clf = Classifier(net).eval()
    attack = host.create("attacks", "fgsm")
    threat = ThreatModel(**cell["threat"])

    def call() -> None:
        ctx = AttackContext(info, torch.device("cpu"), torch.Generator().manual_seed(0))
        for i in range(0, len(x), BATCH):
            attack.run(clf, x[i : i + BATCH], y[i : i + BATCH], threat, ctx)

    mib = (np.asarray(test.x).nbytes + np.asarray(test.y).nbytes) / 2**20
    print(f"test split: {len(x)} records of {x.shape[1]}×{x.shape[2]}, {mib:.1f} MiB")
    return call, mib


def peak_rss(body: str, argv: list[str]) -> Callable[[], float]:
    """A fresh Python process running `body`; its peak RSS in MiB."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}

    def run() -> float:
        # Linux keeps ru_maxrss across execve, so a child exec'd straight from this (large)
        # process reports this process's RSS: a shell in between forks the measured one.
        cmd = [
            "sh",
            "-c",
            '"$@"; exit $?',
            "sh",
            sys.executable,
            "-c",
            RSS.format(body=body),
            *argv,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        return int(out.stdout.split()[-1]) / 1024  # Linux: KiB

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="synthetic n_records")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (trained once)")
    add_common(parser, gpu=False)
    args, device = setup(parser)
    header("ecgarena run: synthetic, cnn, fgsm, CPU", args, BATCH, device)
    with tempfile.TemporaryDirectory() as tmp:
        home, options = Path(tmp), {"n_records": args.records}
        argv = ["run", "--attack", "fgsm", "--epochs", str(args.epochs), "--device", "cpu",
                "--dataset-opt", f"n_records={args.records}", "--home", tmp]  # fmt: skip
        first = invoke(argv)  # generates the data and trains; later cells reuse both
        print(f"first cell (data + training): {first['timings']['total_s']:.1f} s")
        bare, test_mib = bare_attack(home, options, first)
        t = interleaved(
            {"cell": lambda: invoke([*argv, "--force"]), "bare": bare}, args.repeats, args.warmup
        )
        cells = [c["timings"] for c in t.values["cell"]]
        attack_s = [c["attack_s"] for c in cells]
        parts = {k: statistics.median(c[k] for c in cells) for k in cells[0]}
        parts["rest"] = parts["total_s"] - sum(v for k, v in parts.items() if k != "total_s")
        print(
            "cell timings, median s (rest: metrics, checks, artifacts): "
            + ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
        )
        rss = interleaved(
            {"cell": peak_rss(CELL, [*argv, "--force"]), "import": peak_rss(IMPORT_ONLY, [])},
            args.repeats,
            warmup=0,
        )
    cell_mib, base_mib = (statistics.median(rss.values[k]) for k in ("cell", "import"))
    growth = per_pair(rss.values["cell"], rss.values["import"])
    print(
        f"peak RSS: cell process {cell_mib:.0f} MiB (max {max(rss.values['cell']):.0f}), "
        f"import-only process {base_mib:.0f} MiB; cell − import {cell_mib - base_mib:.0f} MiB "
        f"= {(cell_mib - base_mib) / test_mib:.1f}× the test split's {test_mib:.1f} MiB "
        f"(cell ÷ import RSS: median {statistics.median(growth):.2f}, min {min(growth):.2f})"
    )
    overhead = [c["total_s"] - a for c, a in zip(cells, attack_s, strict=True)]
    cli_extra = [w - a for w, a in zip(t.times["cell"], attack_s, strict=True)]
    report(
        [
            Ratio("cell total_s − attack_s ÷ bare attack", overhead, t.times["bare"]),
            Ratio("CLI call wall − attack_s ÷ bare attack", cli_extra, t.times["bare"]),
            Ratio("cell attack_s ÷ bare attack", attack_s, t.times["bare"], "audited", True),
            Ratio("fresh process: cell ÷ import only", rss.times["cell"], rss.times["import"]),
        ]
    )


if __name__ == "__main__":
    main()
