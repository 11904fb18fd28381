"""The GPU proof of issue 14 as one prepared script (not a test): a 5 attacks × 6 defenses ×
2 budgets matrix on synthetic data at PTB-XL scale (21k records) on `--device cuda`, its wall
time and GPU utilisation (nvidia-smi sampled every 0.5 s), attack throughput fp32 vs bf16 with
their fooling rates, and `pool --workers 2` over the GPU against `local` on the same cells.

Run it where a GPU is: `python benchmarks/gpu_proof.py --out gpu.json` (~10 min on one H200;
`--quick` shrinks it to a 1-minute smoke run). Each phase is a fresh `ecgarena matrix` process
on one home, so later phases load the classifiers the first trained.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RUN = "import sys; from ecgarena.cli import main; sys.argv = ['ecgarena', *sys.argv[1:]]; main()"
ATTACKS = "fgsm,pgd,mi-fgsm,apgd-ce,noise"
DEFENSES = "none,median,pgd-at,cpr,dna,randomized-smoothing"


class Utilisation:
    """GPU utilisation samples (percent) from `nvidia-smi` while a block runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()

    def _sample(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self.stop.wait(0.5):
            out = subprocess.run(query, capture_output=True, text=True).stdout.split()
            self.samples += [float(v) for v in out[:1]]

    def __enter__(self) -> Utilisation:
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict[str, float]:
        s = sorted(self.samples) or [0.0]
        return {"mean": sum(s) / len(s), "median": s[len(s) // 2], "max": s[-1], "n": len(s)}


def matrix(home: str, args: list[str]) -> tuple[float, list[dict], dict[str, float]]:
    """One `ecgarena matrix --json` process: wall seconds, its cells, GPU utilisation."""
    cmd = [sys.executable, "-c", RUN, "matrix", "--home", home, "--device", "cuda", *args, "--json"]
    start = time.perf_counter()
    with Utilisation() as gpu:
        out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode not in (0, 1):  # 1: some cell failed; it is counted below
        sys.exit(f"matrix failed ({out.returncode}): {out.stderr[-2000:]}")
    return wall, json.loads(out.stdout)["cells"], gpu.summary()


def throughput(cells: list[dict]) -> dict[str, float]:
    """Attacked records per attack-second, and the mean fooling rate, of the done cells."""
    done = [c for c in cells if c["status"] == "done"]
    records = sum(c["adversarial"]["n"] for c in done)
    seconds = sum(c["timings"]["attack_s"] for c in done)
    fooling = [c["fooling"]["flip_rate"] for c in done if c["fooling"]["flip_rate"] is not None]
    return {
        "cells": len(cells),
        "failed": len(cells) - len(done),
        "records_per_attack_s": records / max(seconds, 1e-9),
        "mean_fooling_rate": sum(fooling) / max(len(fooling), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_proof.json"))
    parser.add_argument("--quick", action="store_true", help="2k records, 2 × 2 cells")
    args = parser.parse_args()
    records, attacks, defenses = (
        (2000, "fgsm,pgd", "none,median") if args.quick else (21000, ATTACKS, DEFENSES)
    )
    grid = ["--attacks", attacks, "--defenses", defenses, "--eps", "0.02,0.05"]
    grid += ["--param", f"synthetic.n_records={records}", "--epochs", "2", "--attack-batch", "1024"]
    report: dict[str, object] = {"records": records, "attacks": attacks, "defenses": defenses}
    with tempfile.TemporaryDirectory() as home:
        wall, cells, gpu = matrix(home, grid)  # trains every classifier, then every cell
        report["fp32_first_run"] = {"wall_s": wall, "gpu_util": gpu, **throughput(cells)}
        for precision in ("fp32", "bf16"):
            wall, cells, gpu = matrix(home, [*grid, "--precision", precision, "--force"])
            report[f"{precision}_cells"] = {"wall_s": wall, "gpu_util": gpu, **throughput(cells)}
        wall, cells, gpu = matrix(home, [*grid, "--force", "--executor", "pool", "--workers", "2"])
        report["pool2_fp32_cells"] = {"wall_s": wall, "gpu_util": gpu, **throughput(cells)}
    fp32, bf16 = report["fp32_cells"], report["bf16_cells"]
    report["bf16_speedup"] = bf16["records_per_attack_s"] / fp32["records_per_attack_s"]
    report["bf16_fooling_minus_fp32_pp"] = 100 * (
        bf16["mean_fooling_rate"] - fp32["mean_fooling_rate"]
    )
    report["pool2_over_local_wall"] = report["pool2_fp32_cells"]["wall_s"] / fp32["wall_s"]
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
