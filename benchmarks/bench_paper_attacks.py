"""Paper attacks against their own lower bound, interleaved per repeat (not a test).

1. SCAR update: a universal step (gradient + zero-phase low-pass + Gaussian smoothing +
   clip-filter projection) ÷ one forward+backward of the same batch (target ≤ 1.3); timed as
   5 steps ÷ 5 passes, so that each timed call lasts long enough to pair well.
2. SAP (k PGD + 2k smoothed steps) ÷ 3k·(forward+backward) (target ≤ 1.2).
3. DeepFool Jacobian (one forward, C backward passes) ÷ C·(forward+backward): < 1, as the
   forward is shared (not a lower bound).
Model: the `cnn` plugin on 12×5000 (PTB-XL at 500 Hz).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from ecgarena import AttackContext, Classifier, DatasetInfo, Host, eval_mode, loss_and_grad
from ecgarena_sap import SAPAttack
from ecgarena_scar.attack import SCARAttack
from ecgarena_scar.universal import universal_grad
from ecgarena_universal_deepfool.deepfool import logits_and_jacobian
from timing import add_common, device_sync, header, interleaved, ratio, report, setup

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
CLASSES = 5
SCAR_STEPS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--fs", type=float, default=500.0)
    parser.add_argument("--k", type=int, default=10, help="SAP: PGD steps (SAP steps = 2k)")
    add_common(parser)
    args, device = setup(parser)
    header(f"cnn, 12×{args.samples} at {args.fs:g} Hz, SAP k = {args.k}", args, args.batch, device)

    torch.manual_seed(0)
    net = Host(builtins=False).create("models", "cnn").build(12, args.samples, CLASSES)
    clf = Classifier(net).to(device).eval()
    x = torch.randn(args.batch, 12, args.samples, device=device) * 0.3
    y = torch.randint(0, 2, (args.batch, CLASSES), device=device).float()
    info = DatasetInfo("bench", "multilabel", tuple("ABCDE"), LEADS, args.fs, args.samples)
    ctx = AttackContext(info, device, torch.Generator(device=device).manual_seed(0))

    def fwd_bwd(n: int) -> Callable[[], None]:
        def passes() -> None:
            with eval_mode(clf):
                for _ in range(n):
                    loss_and_grad(clf, x, torch.zeros_like(x), y, "multilabel")

        return passes

    scar = SCARAttack(projection="clip-filter")
    threat = scar.threat_model(scar.expand_budget(0.2, LEADS))
    kernel = scar.kernel(args.fs)
    v = torch.zeros(1, 12, args.samples, device=device)
    sap = SAPAttack(pgd_steps=args.k, steps=2 * args.k)
    sap_threat = sap.threat_model(0.05)

    def scar_steps() -> None:
        for _ in range(SCAR_STEPS):
            scar.update(v, universal_grad(clf, x, y, v, "multilabel"), threat, args.fs, kernel)

    def jacobian() -> None:
        with eval_mode(clf):
            logits_and_jacobian(clf, x, CLASSES)

    t = interleaved(
        {
            "5·fb": fwd_bwd(SCAR_STEPS),
            "scar": scar_steps,
            "3k·fb": fwd_bwd(3 * args.k),
            "sap": lambda: sap.run(clf, x, y, sap_threat, ctx),
            "C·fb": fwd_bwd(CLASSES),
            "jacobian": jacobian,
        },
        args.repeats,
        args.warmup,
        device_sync(device),
    )
    k3 = 3 * args.k
    report(
        [
            ratio(t, "SCAR step ÷ fwd+bwd", "scar", "5·fb", note="target ≤ 1.3", bound=True),
            ratio(
                t, f"SAP-{args.k} ÷ {k3}·(fwd+bwd)", "sap", "3k·fb", note="target ≤ 1.2", bound=True
            ),
            ratio(t, f"Jacobian ÷ {CLASSES}·(fwd+bwd)", "jacobian", "C·fb", note="target < 1"),
        ]
    )


if __name__ == "__main__":
    main()
