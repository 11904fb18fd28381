"""Inference cost of the paper defenses against plain forward passes, interleaved (not a test).

1. CPR: one batch through the deployed CPR classifier (E_c + head) ÷ the same batch through an
   undefended ResNet1d18 of the same width (target ≤ 2).
2. Randomized smoothing CERTIFY of R records (n0 + n draws each, noisy copies batched B at a
   time) in records/s, against the same model's batched forward throughput: B records per plain
   forward of a batch of B, divided by n0 + n. Time ratio = certify ÷ R·(n0 + n)/B forwards (≥ 1).
3. RS `counts` (8B noisy copies of one record) ÷ 8 plain forwards of B records (≥ 1; ≤ 1.1).
4. DNA ensemble (3 Fourier-filtered members) forward ÷ 3 plain forwards (≈ 1).
5. ℓ∞-dist net certify ÷ its forward (certification is one pass: ≈ 1).
Input: 12×1000 (PTB-XL at 100 Hz). Calls shorter than ~0.3 s are timed 5 in a row.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable

import torch
from ecgarena import Classifier, ClassifierInfo, Host
from ecgarena_caslcnet.certified import CertifiedClassifier
from ecgarena_cpr.model import CPRNet
from ecgarena_dna import DNAEnsemble, Member
from ecgarena_dna.fourier import band_masks
from ecgarena_randomized_smoothing import SmoothedClassifier
from timing import add_common, device_sync, header, interleaved, looped, ratio, report, setup

COUNTS_BATCHES = 8
INNER = 5  # calls per timed call for the short contenders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="B: records per forward")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--n0", type=int, default=100, help="RS selection draws")
    parser.add_argument("--n", type=int, default=1000, help="RS estimation draws")
    parser.add_argument("--records", type=int, default=2, help="R: records RS certifies")
    add_common(parser)
    args, device = setup(parser)
    header(f"resnet1d18 width {args.width}, 12×1000", args, args.batch, device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 12, 1000, device=device) * 0.3
    host = Host(builtins=False)

    def resnet() -> torch.nn.Module:
        return host.create("models", "resnet1d18", {"width": args.width}).build(12, 1000, 5)

    erm = Classifier(resnet()).to(device).eval()
    cpr = Classifier(CPRNet(12, 1000, 5, latent=64, width=args.width)).to(device).eval()
    rs = SmoothedClassifier(erm.net, 0.05, 1, "multilabel", seed=0, batch=args.batch).eval()
    masks = band_masks(1000, 100.0, 15.0)
    members = [Member(resnet(), m) for m in (masks[0], masks[1], masks[0])]
    dna = DNAEnsemble(members, "multilabel", ClassifierInfo(forward_passes=3)).to(device).eval()
    linf_net = host.create("models", "linf-dist-net", {"width": args.width}).build(12, 1000, 5)
    linf = CertifiedClassifier(linf_net, "multilabel", "bench").to(device).eval()
    draws = args.records * (args.n0 + args.n)
    plain_batches = math.ceil(draws / args.batch)

    def forwards(clf: torch.nn.Module, n: int = INNER) -> Callable[[], None]:
        return looped(torch.no_grad()(lambda: clf(x)), n)

    t = interleaved(
        {
            "erm": forwards(erm),
            "cpr": forwards(cpr),
            "rs-certify": lambda: rs.certify(x[: args.records], n0=args.n0, n=args.n),
            "certify-bound": forwards(erm, plain_batches),
            "rs-counts": lambda: rs.counts(x[:1], COUNTS_BATCHES * args.batch),
            "8·erm": forwards(erm, COUNTS_BATCHES),
            "dna": forwards(dna),
            "3·erm": forwards(erm, 3 * INNER),
            "linf": forwards(linf),
            "linf-certify": looped(lambda: linf.certify(x), INNER),
        },
        args.repeats,
        args.warmup,
        device_sync(device),
    )
    scale = draws / (plain_batches * args.batch)  # certify needs draws/B of the timed forwards
    cert_rate = args.records / statistics.median(t.times["rs-certify"])
    bound_rate = plain_batches * args.batch / statistics.median(t.times["certify-bound"])
    print(
        f"RS certify (R={args.records}, n0={args.n0}, n={args.n}, B={args.batch}): "
        f"{cert_rate:.2f} records/s; batched forward {bound_rate:.0f} records/s → at most "
        f"{bound_rate / (args.n0 + args.n):.2f} certified records/s"
    )
    report(
        [
            ratio(t, "CPR ÷ ERM forward", "cpr", "erm", note="target ≤ 2"),
            ratio(
                t,
                "RS certify ÷ R·(n0+n)/B forwards",
                "rs-certify",
                "certify-bound",
                scale,
                bound=True,
            ),
            ratio(
                t,
                f"RS counts ÷ {COUNTS_BATCHES} plain forwards",
                "rs-counts",
                "8·erm",
                note="target ≤ 1.1",
                bound=True,
            ),
            ratio(t, "DNA (3 members) ÷ 3 plain forwards", "dna", "3·erm", note="≈ 1"),
            ratio(t, "ℓ∞-dist certify ÷ its forward", "linf-certify", "linf", note="≈ 1"),
        ]
    )


if __name__ == "__main__":
    main()
