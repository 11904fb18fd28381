"""ecgarena-autoattack against torchattacks and against their lower bound, interleaved (not a test).

APGD-CE, APGD-DLR (untargeted) and Square (ℓ∞), ours vs torchattacks' `APGD` / `Square`, on the
same trained model, records and uniform scalar ℓ∞ budget in mV; APGD (both) also ÷ its lower
bound, (steps + 1)·(forward+backward) of the same model on the same records.

- Data: ecgarena's synthetic 12-lead generator (100 Hz, 10 s), the records with exactly one
  PTB-XL superclass → a 5-class multiclass task (torchattacks is multiclass only); folds 1–8
  train, 10 test. Model: basic-models' `cnn`, trained a few epochs with Adam.
- Records: the first `--records` clean-correct test records. Budget: from a small grid, the ε
  at which PGD-10 fools closest to half of them (or `--eps`).
- torchattacks clamps to [0, 1] and expects images: it sees u ∈ [0, 1]^(L×H×W), x = lo + u·(hi −
  lo) reshaped to (L, T) (H·W = T), lo = min x − 2ε, hi = max x + 2ε so the clamp never binds,
  ε_u = ε/(hi − lo). Its Square draws squares on that H × W layout, ours on the 1-D record.
- Both sides of a pair get the same seed (the call count). Fooling rate: share of records whose
  prediction changes; δ is checked against the budget for both.

Needs `pip install --no-deps torchattacks` (torchvision is not needed for these classes).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from collections.abc import Callable

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
    pgd,
    standardization,
)
from ecgarena.synthetic_ecg import CLASSES, LEADS, generate
from timing import add_common, header, interleaved, looped, ratio, report, setup
from torch import nn
from torchattacks.attacks.apgd import APGD
from torchattacks.attacks.square import Square

Data = tuple[np.ndarray, np.ndarray]


def data(n: int, seed: int) -> tuple[Data, Data]:
    """Single-label synthetic records as a 5-class task; folds 1–8 train, 10 test."""
    x, y = generate(n, seed)
    single, fold, labels = y.sum(1) == 1, np.arange(n) % 10 + 1, y.argmax(1)
    train, test = single & (fold <= 8), single & (fold == 10)
    return (x[train], labels[train]), (x[test], labels[test])


def train_cnn(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> Classifier:
    """basic-models' `cnn` with the training set's standardisation, Adam, batches of 64."""
    torch.manual_seed(seed)
    net = Host(builtins=False).create("models", "cnn").build(x.shape[1], x.shape[2], len(CLASSES))
    clf = Classifier(net)
    clf.set_standardization(*standardization(x))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    opt, g = torch.optim.Adam(clf.parameters(), 1e-3), torch.Generator().manual_seed(seed)
    clf.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(clf(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return clf.eval()


class UnitBox(nn.Module):
    """torchattacks' view of the classifier: u ∈ [0, 1]^(L, H, W) ↦ clf(lo + u·(hi − lo))."""

    def __init__(self, clf: Classifier, lo: float, hi: float, shape: tuple[int, int]) -> None:
        super().__init__()
        self.clf, self.lo, self.hi, self.shape = clf, lo, hi, shape

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.lo) / (self.hi - self.lo)).reshape(len(x), x.shape[1], *self.shape)

    def to_mv(self, u: torch.Tensor) -> torch.Tensor:
        return (self.lo + u * (self.hi - self.lo)).reshape(len(u), u.shape[1], -1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.clf(self.to_mv(u))


def grid_shape(t: int) -> tuple[int, int]:
    """H × W = T with H ≤ W as close to square as the divisors allow."""
    h = max(d for d in range(1, int(t**0.5) + 1) if t % d == 0)
    return h, t // h


def fooling(clf: Classifier, x: torch.Tensor, delta: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((clf(x + delta).argmax(1) != y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="synthetic records generated")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--records", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="APGD steps (both)")
    parser.add_argument("--queries", type=int, default=100, help="Square queries (both)")
    parser.add_argument("--eps", type=float, default=None, help="ℓ∞ budget in mV")
    add_common(parser, gpu=False)
    args, device = setup(parser)
    (x_tr, y_tr), (x_te, y_te) = data(args.n, 0)
    clf = train_cnn(x_tr, y_tr, args.epochs, 0)
    xt, yt = torch.from_numpy(x_te), torch.from_numpy(y_te).long()
    with torch.no_grad():
        right = clf(xt).argmax(1) == yt
    x, y = xt[right][: args.records], yt[right][: args.records]
    title = f"cnn, {len(x_tr)} train records, clean accuracy {right.float().mean():.3f}"
    header(title, args, len(x), device)

    eps = args.eps
    if eps is None:
        rates = {}
        for e in (0.005, 0.0075, 0.01, 0.015, 0.02):
            d = pgd(clf, x, y, ThreatModel(budget_mv=e), "multiclass", steps=10,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
            rates[e] = fooling(clf, x, d, y)
        eps = min(rates, key=lambda e: abs(rates[e] - 0.5))
        print(
            "PGD-10 fooling rate by ε (mV): "
            + ", ".join(f"{e:g}: {r:.2f}" for e, r in rates.items())
        )
    threat = ThreatModel(norm="linf", budget_mv=eps)
    lo, hi = float(x.min()) - 2 * eps, float(x.max()) + 2 * eps
    box = UnitBox(clf, lo, hi, grid_shape(x.shape[2])).eval()
    eps_u, u = eps / (hi - lo), box.to_unit(x)
    print(
        f"ε = {eps:g} mV (box [{lo:.2f}, {hi:.2f}] mV, ε_u = {eps_u:.3g}, grid "
        f"{box.shape[0]}×{box.shape[1]}) · APGD {args.steps} steps · Square {args.queries} queries"
    )
    host, reports = Host(builtins=False), {}
    info = DatasetInfo("synthetic-single", "multiclass", CLASSES, LEADS, 100.0, x.shape[2])

    def ours(name: str, options: dict) -> Callable[[], torch.Tensor]:
        seeds = itertools.count()

        def attack() -> torch.Tensor:
            a = host.create("attacks", name, options)
            ctx = AttackContext(info, device, torch.Generator().manual_seed(next(seeds)))
            out = a.run(clf, x, y, threat, ctx)
            reports[name] = out.report
            return out.delta

        return attack

    def theirs(cls: type[nn.Module], **options: object) -> Callable[[], torch.Tensor]:
        seeds = itertools.count()

        def attack() -> torch.Tensor:
            make = cls(box, norm="Linf", eps=eps_u, seed=next(seeds), **options)
            with eval_mode(box):
                return box.to_mv(make(u, y)) - x

        return attack

    def fwd_bwd() -> None:
        with eval_mode(clf):
            loss_and_grad(clf, x, torch.zeros_like(x), y, "multiclass")

    steps, q = args.steps, args.queries
    t = interleaved(
        {
            "bound": looped(fwd_bwd, steps + 1),
            "apgd-ce ours": ours("apgd-ce", {"steps": steps}),
            "apgd-ce torchattacks": theirs(APGD, steps=steps, loss="ce"),
            "apgd-dlr ours": ours("apgd-dlr", {"steps": steps}),
            "apgd-dlr torchattacks": theirs(APGD, steps=steps, loss="dlr"),
            "square ours": ours("square", {"n_queries": q}),
            "square torchattacks": theirs(Square, n_queries=q),
        },
        args.repeats,
        args.warmup,
    )
    rows = []
    for a in ("apgd-ce", "apgd-dlr", "square"):
        rows.append(ratio(t, f"{a}: ours ÷ torchattacks", f"{a} ours", f"{a} torchattacks"))
    for name in (n for n in t.times if n.startswith("apgd")):
        rows.append(ratio(t, f"{name} ÷ {steps + 1}·(fwd+bwd)", name, "bound", bound=True))
    report(rows)
    print(f"{'contender':22} {'fooling mean':>12} {'min–max':>11} {'max |δ|−ε mV':>13}")
    for name, deltas in t.values.items():
        if name != "bound":
            fr = [fooling(clf, x, d.detach(), y) for d in deltas]
            over = max(float(d.detach().abs().max()) - eps for d in deltas)
            print(
                f"{name:22} {statistics.fmean(fr):12.3f} {min(fr):5.3f}–{max(fr):5.3f} {over:+13.1e}"
            )
    sq = reports["square"]
    print(f"our square, last call: queries per record mean {sq['queries_mean']:.1f}")


if __name__ == "__main__":
    main()
