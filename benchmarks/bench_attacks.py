"""Speed ratios measured side by side in one run (not a test).

1. PGD-k overhead: time of PGD-k ÷ k·(one forward+backward) on ResNet1d18, B=64, 12×1000;
   the same ratio for MI-FGSM-k, and for C&W-ℓ2 (steps × search rounds, multiclass logits).
2. Dataset cache: second load (memory-mapped .npy, materialised) vs WFDB decode of the PTB-XL
   subset at 100 Hz.
The last line is one JSON object with keys `pgd_overhead_ratio` and `cache_speedup`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ecgarena.datasets.ptbxl import PTBXLDataset
from ecgarena.gradients import eval_mode, loss_and_grad, mi_fgsm, pgd
from ecgarena.host import Host
from ecgarena.protocols import AttackContext, Classifier, DatasetInfo
from ecgarena.specs import ThreatModel


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_pgd(k: int, batch: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    net = Host(builtins=False).create("models", "resnet1d18").build(12, 1000, 5)
    clf = Classifier(net).to(device).eval()
    x = torch.randn(batch, 12, 1000, device=device) * 0.3
    y = torch.randint(0, 2, (batch, 5), device=device).float()
    threat = ThreatModel(budget_mv=0.05)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def fwd_bwd():
        with eval_mode(clf):
            loss_and_grad(clf, x, torch.zeros_like(x), y, "multilabel")
        sync()

    def attack():
        pgd(clf, x, y, threat, "multilabel", steps=k, random_start=True)
        sync()

    def momentum():
        mi_fgsm(clf, x, y, threat, "multilabel", steps=k)
        sync()

    cw = Host(builtins=False).create("attacks", "cw-l2", {"steps": k, "search_steps": 2})
    info = DatasetInfo("bench", "multiclass", tuple("abcde"), tuple("L" * 12), 100.0, 1000)
    ctx = AttackContext(info, device, torch.Generator(device=device).manual_seed(0))
    labels = torch.randint(0, 5, (batch,), device=device)

    def carlini_wagner():
        cw.run(clf, x, labels, cw.threat_model(2.0), ctx)
        sync()

    fwd_bwd(), attack()  # warm-up
    t_fb = median_time(fwd_bwd, repeats * 3)
    t_pgd = median_time(attack, repeats)
    t_mi = median_time(momentum, repeats)
    t_cw = median_time(carlini_wagner, repeats)
    return {
        "fwd_bwd_s": t_fb,
        f"pgd{k}_s": t_pgd,
        "pgd_overhead_ratio": t_pgd / (k * t_fb),
        "mi_fgsm_overhead_ratio": t_mi / (k * t_fb),
        "cw_overhead_ratio": t_cw / (2 * k * t_fb),
    }


def bench_cache(data_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        d = PTBXLDataset(data_dir=data_dir, cache_dir=Path(cache), rate=100)
        t = time.perf_counter()
        d.build()
        t_decode = time.perf_counter() - t
        d.load("train")  # write the cache

        def second_load():
            fresh = PTBXLDataset(data_dir=data_dir, cache_dir=Path(cache), rate=100)
            return sum(float(np.asarray(fresh.load(s).x).sum()) for s in ("train", "val", "test"))

        second_load()
        t_cache = median_time(second_load, 5)
    return {"wfdb_decode_s": t_decode, "cache_load_s": t_cache, "cache_speedup": t_decode / t_cache}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    default_data = Path(
        os.environ.get(
            "ECGARENA_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    parser.add_argument("--ptbxl", type=Path, default=default_data / "ptbxl")
    args = parser.parse_args()

    out = bench_pgd(args.k, args.batch, args.repeats, torch.device(args.device))
    print(
        f"ResNet1d18 B={args.batch} 12×1000 on {args.device} (torch threads {torch.get_num_threads()})"
    )
    print(f"  one forward+backward   {out['fwd_bwd_s'] * 1e3:8.1f} ms")
    print(f"  PGD-{args.k}                 {out[f'pgd{args.k}_s'] * 1e3:8.1f} ms")
    print(f"  PGD-k ÷ k·(fwd+bwd)    {out['pgd_overhead_ratio']:8.3f}   (target ≤ 1.15)")
    print(f"  MI-FGSM-k ÷ k·(fwd+bwd) {out['mi_fgsm_overhead_ratio']:7.3f}   (target ≤ 1.15)")
    print(
        f"  C&W (2×k steps) ÷ 2k·(fwd+bwd) {out['cw_overhead_ratio']:6.3f}   (Adam + bookkeeping)"
    )
    if (args.ptbxl / "ptbxl_database.csv").exists():
        out.update(bench_cache(args.ptbxl))
        print(
            f"PTB-XL subset 100 Hz: WFDB decode {out['wfdb_decode_s']:.2f} s, cached load "
            f"{out['cache_load_s'] * 1e3:.1f} ms, speed-up {out['cache_speedup']:.0f}×   (target ≥ 20×)"
        )
    else:
        out["cache_speedup"] = None
        print(f"PTB-XL subset not found at {args.ptbxl}: cache speed-up not measured")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
