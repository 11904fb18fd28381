"""Speed ratios of the paper attacks, measured side by side in one run (not a test).

1. SCAR update overhead: one universal step (gradient + zero-phase low-pass + Gaussian smoothing
   + clip-filter projection) ÷ one forward+backward of the same batch.
2. SAP overhead: SAP (k PGD + 2k smoothed steps) ÷ 3k·(forward+backward).
3. DeepFool Jacobian (one forward, C backward passes) ÷ C·(forward+backward).
Model: the `cnn` plugin on 12×5000 (PTB-XL at 500 Hz). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json

import torch
from bench_attacks import median_time  # noqa: E402  (run as a script from benchmarks/)
from ecgarena.gradients import eval_mode, loss_and_grad
from ecgarena.host import Host
from ecgarena.protocols import AttackContext, Classifier, DatasetInfo
from ecgarena_sap import SAPAttack
from ecgarena_scar.attack import SCARAttack
from ecgarena_scar.universal import universal_grad
from ecgarena_universal_deepfool.deepfool import logits_and_jacobian

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--fs", type=float, default=500.0)
    parser.add_argument("--k", type=int, default=10, help="SAP: PGD steps (SAP steps = 2k)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    n_classes = 5
    net = Host(builtins=False).create("models", "cnn").build(12, args.samples, n_classes)
    clf = Classifier(net).eval()
    x = torch.randn(args.batch, 12, args.samples) * 0.3
    y = torch.randint(0, 2, (args.batch, n_classes)).float()
    info = DatasetInfo("bench", "multilabel", tuple("ABCDE"), LEADS, args.fs, args.samples)
    ctx = AttackContext(info, torch.device("cpu"), torch.Generator().manual_seed(0))

    def fwd_bwd():
        with eval_mode(clf):
            loss_and_grad(clf, x, torch.zeros_like(x), y, "multilabel")

    t_fb = median_time(fwd_bwd, args.repeats * 3)

    scar = SCARAttack()
    threat = scar.threat_model(scar.expand_budget(0.2, LEADS))
    kernel = scar.kernel(args.fs)
    v = torch.zeros(1, 12, args.samples)

    def scar_step():
        scar.update(v, universal_grad(clf, x, y, v, "multilabel"), threat, args.fs, kernel)

    t_scar = median_time(scar_step, args.repeats * 3)

    sap = SAPAttack(pgd_steps=args.k, steps=2 * args.k)
    sap_threat = sap.threat_model(0.05)
    t_sap = median_time(lambda: sap.run(clf, x, y, sap_threat, ctx), args.repeats)

    def jacobian():
        with eval_mode(clf):
            logits_and_jacobian(clf, x, n_classes)

    t_jac = median_time(jacobian, args.repeats)
    out = {
        "fwd_bwd_s": t_fb,
        "scar_step_s": t_scar,
        "scar_step_ratio": t_scar / t_fb,
        "sap_s": t_sap,
        "sap_overhead_ratio": t_sap / (3 * args.k * t_fb),
        "jacobian_s": t_jac,
        "jacobian_ratio": t_jac / (n_classes * t_fb),
    }
    print(f"cnn B={args.batch} 12×{args.samples} CPU (torch threads {torch.get_num_threads()})")
    print(f"  one forward+backward            {t_fb * 1e3:8.1f} ms")
    print(f"  SCAR step ÷ fwd+bwd             {out['scar_step_ratio']:8.3f}   (target ≤ 1.3)")
    print(
        f"  SAP-{args.k} ÷ {3 * args.k}·(fwd+bwd)          {out['sap_overhead_ratio']:8.3f}   (target ≤ 1.2)"
    )
    print(
        f"  Jacobian ÷ C·(fwd+bwd)          {out['jacobian_ratio']:8.3f}   (C={n_classes}, target < 1)"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
