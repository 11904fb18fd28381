"""Gradient attacks against their own lower bound, and the dataset cache (not a test).

1. PGD-k and MI-FGSM-k ÷ k·(forward+backward) of the same ResNet1d18 on the same B×12×1000 batch,
   timed in the same repeat (≥ 1 when measured right; target ≤ 1.15).
2. C&W-ℓ2 (k Adam steps × 2 search rounds, multiclass logits) ÷ 2k·(forward+backward).
3. Dataset cache: WFDB decode of the PTB-XL subset at 100 Hz ÷ second load (memory-mapped .npy,
   materialised); target ≥ 20.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from ecgarena import (
    AttackContext,
    Classifier,
    DatasetInfo,
    Host,
    ThreatModel,
    eval_mode,
    loss_and_grad,
    mi_fgsm,
    pgd,
)
from timing import Ratio, add_common, device_sync, header, interleaved, ratio, report, setup


def attack_rows(args: argparse.Namespace, device: torch.device) -> list[Ratio]:
    """PGD, MI-FGSM and C&W interleaved with k forward+backward passes of the same batch."""
    torch.manual_seed(0)
    k, host = args.k, Host(builtins=False)
    net = host.create("models", "resnet1d18", {"width": args.width}).build(12, 1000, 5)
    clf = Classifier(net).to(device).eval()
    x = torch.randn(args.batch, 12, 1000, device=device) * 0.3
    y = torch.randint(0, 2, (args.batch, 5), device=device).float()
    threat = ThreatModel(budget_mv=0.05)
    cw = host.create("attacks", "cw-l2", {"steps": k, "search_steps": 2})
    info = DatasetInfo("bench", "multiclass", tuple("abcde"), tuple("L" * 12), 100.0, 1000)
    ctx = AttackContext(info, device, torch.Generator(device=device).manual_seed(0))
    labels = torch.randint(0, 5, (args.batch,), device=device)

    def k_fwd_bwd() -> None:
        with eval_mode(clf):
            for _ in range(k):
                loss_and_grad(clf, x, torch.zeros_like(x), y, "multilabel")

    t = interleaved(
        {
            "k·fb": k_fwd_bwd,
            "pgd": lambda: pgd(clf, x, y, threat, "multilabel", steps=k, random_start=True),
            "mi-fgsm": lambda: mi_fgsm(clf, x, y, threat, "multilabel", steps=k),
            "cw": lambda: cw.run(clf, x, labels, cw.threat_model(2.0), ctx),
        },
        args.repeats,
        args.warmup,
        device_sync(device),
    )
    return [
        ratio(t, f"PGD-{k} ÷ {k}·(fwd+bwd)", "pgd", "k·fb", note="target ≤ 1.15", bound=True),
        ratio(
            t, f"MI-FGSM-{k} ÷ {k}·(fwd+bwd)", "mi-fgsm", "k·fb", note="target ≤ 1.15", bound=True
        ),
        ratio(t, f"C&W ({k}×2 steps) ÷ {2 * k}·(fwd+bwd)", "cw", "k·fb", 2.0, "Adam", bound=True),
    ]


def cache_rows(args: argparse.Namespace, root: Path) -> list[Ratio]:
    """WFDB decode (fresh cache folder each call) interleaved with a cached load of all splits."""
    host = Host()

    def dataset(cache: str) -> object:
        options = {"data_dir": args.ptbxl, "cache_dir": Path(cache), "rate": 100}
        return host.create("datasets", "ptbxl", options)

    def decode() -> None:
        with tempfile.TemporaryDirectory(dir=root) as fresh:
            dataset(fresh).build()

    with tempfile.TemporaryDirectory(dir=root) as cache:
        dataset(cache).load("train")  # writes the cache

        def cached() -> float:
            fresh = dataset(cache)
            return sum(float(np.asarray(fresh.load(s).x).sum()) for s in ("train", "val", "test"))

        t = interleaved({"decode": decode, "cached": cached}, args.repeats, args.warmup)
    return [ratio(t, "PTB-XL WFDB decode ÷ cached load", "decode", "cached", note="target ≥ 20")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10, help="gradient steps")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=16, help="ResNet1d18 width (plugin: 64)")
    data = Path(
        os.environ.get(
            "ECGARENA_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    parser.add_argument("--ptbxl", type=Path, default=data / "ptbxl")
    add_common(parser)
    args, device = setup(parser)
    header(f"ResNet1d18 width {args.width}, 12×1000, k = {args.k}", args, args.batch, device)
    rows = attack_rows(args, device)
    if (args.ptbxl / "ptbxl_database.csv").exists():
        with tempfile.TemporaryDirectory() as root:
            rows += cache_rows(args, Path(root))
    else:
        print(f"PTB-XL subset not found at {args.ptbxl}: cache speed-up not measured")
    report(rows)


if __name__ == "__main__":
    main()
