"""Inference cost of the paper defenses, measured side by side in one run (not a test).

1. CPR latency: one batch through the deployed CPR classifier (E_c + head) ÷ the same batch
   through an undefended ResNet1d18 of the same width (target ≤ 2).
2. Randomized smoothing: CERTIFY (n0 + n draws) time ÷ one plain forward pass of the batch.
3. Noise-batched RS throughput (noisy copies per second inside `counts`) ÷ plain batched
   forward throughput at the same batch size (target ≥ 0.9).
4. DNA ensemble (3 Fourier-filtered members) forward ÷ 3 × one member's plain forward (≈ 1:
   the FFT band filter and the averaging cost little).
5. ℓ∞-dist net certify ÷ its forward (certification is one pass: target ≈ 1).
Input: 12×1000 (PTB-XL at 100 Hz). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_attacks import median_time  # noqa: E402  (run as a script from benchmarks/)
from ecgarena.host import Host
from ecgarena.protocols import Classifier, ClassifierInfo
from ecgarena_caslcnet.certified import CertifiedClassifier
from ecgarena_cpr.model import CPRNet
from ecgarena_dna import DNAEnsemble, Member
from ecgarena_dna.fourier import band_masks
from ecgarena_randomized_smoothing import SmoothedClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--n", type=int, default=1000, help="RS certify draws")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, 12, 1000) * 0.3
    host = Host(builtins=False)
    erm = Classifier(host.create("models", "resnet1d18", {"width": args.width}).build(12, 1000, 5))
    cpr = Classifier(CPRNet(12, 1000, 5, latent=64, width=args.width))
    erm.eval(), cpr.eval()

    def forward(clf, inputs=x):
        with torch.no_grad():
            clf(inputs)

    t_erm = median_time(lambda: forward(erm), args.repeats)
    t_cpr = median_time(lambda: forward(cpr), args.repeats)

    rs = SmoothedClassifier(erm.net, 0.05, 1, "multilabel", seed=0, batch=args.batch).eval()
    single = x[:1]
    t_one = median_time(lambda: forward(erm, single), args.repeats)
    t_cert = median_time(lambda: rs.certify(single, n0=100, n=args.n), 3)
    draws = args.batch * 8
    t_counts = median_time(lambda: rs.counts(single, draws), 3)
    t_plain = median_time(lambda: forward(erm), args.repeats) * 8  # same number of copies
    masks = band_masks(1000, 100.0, 15.0)
    members = [
        Member(host.create("models", "resnet1d18", {"width": args.width}).build(12, 1000, 5), m)
        for m in (masks[0], masks[1], masks[0])
    ]
    dna = DNAEnsemble(members, "multilabel", ClassifierInfo(forward_passes=3)).eval()
    t_dna = median_time(lambda: forward(dna), args.repeats)
    linf = CertifiedClassifier(
        host.create("models", "linf-dist-net", {"width": args.width}).build(12, 1000, 5),
        "multilabel",
        "bench",
    ).eval()
    t_linf = median_time(lambda: forward(linf), args.repeats)
    t_linf_cert = median_time(lambda: linf.certify(x), args.repeats)
    out = {
        "dna_over_three_forwards": t_dna / (3 * t_erm),
        "linf_certify_over_forward": t_linf_cert / t_linf,
        "erm_s": t_erm,
        "cpr_s": t_cpr,
        "cpr_latency_ratio": t_cpr / t_erm,
        "rs_certify_s": t_cert,
        "rs_certify_over_one_forward": t_cert / t_one,
        "rs_throughput_ratio": t_plain / t_counts,
    }
    print(f"resnet1d18 width {args.width}, B={args.batch}, 12×1000, CPU")
    print(f"  CPR ÷ ERM inference latency        {out['cpr_latency_ratio']:8.3f}   (target ≤ 2)")
    print(
        f"  RS certify (n0=100, n={args.n}) ÷ one forward  {out['rs_certify_over_one_forward']:8.1f}"
    )
    print(
        f"  RS noise-batched ÷ plain throughput {out['rs_throughput_ratio']:8.3f}   (target ≥ 0.9)"
    )
    print(f"  DNA (3 members) ÷ 3 plain forwards   {out['dna_over_three_forwards']:8.3f}")
    print(f"  ℓ∞-dist certify ÷ forward           {out['linf_certify_over_forward']:8.3f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
