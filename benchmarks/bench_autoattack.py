"""ecgarena-autoattack against torchattacks, side by side in one run (not a test).

APGD-CE, APGD-DLR (untargeted) and Square (ℓ∞), ours vs torchattacks' `APGD` / `Square`, on the
same trained model, the same records and the same uniform scalar ℓ∞ budget in mV.

- Data: ecgarena's embedded synthetic 12-lead generator (100 Hz, 10 s), the records with exactly
  one PTB-XL superclass → a 5-class multiclass task (torchattacks is multiclass only); folds
  1–8 train, 10 test. Model: basic-models' `cnn`, trained a few epochs with Adam.
- Records: the first `--records` clean-correct test records. Budget: from a small grid, the ε
  at which PGD-10 fools closest to half of them (or `--eps`).
- torchattacks clamps every input to [0, 1] and expects images: it sees u ∈ [0, 1]^(L×H×W),
  x = lo + u·(hi − lo) reshaped to (L, T) (H·W = T, rows of W consecutive samples), with
  lo = min x − 2ε, hi = max x + 2ε so the clamp never binds, and ε_u = ε/(hi − lo).
  Its Square therefore draws its squares on that H × W layout (s segments of s samples, W apart;
  its stripes are per lead), ours on the 1-D record (windows over all leads).
- Each repeat runs every contender once, interleaved (ours, theirs, ours, theirs, ...), with the
  repeat index as both sides' seed. Fooling rate: share of the (clean-correct) records whose
  prediction changes; δ is checked against the budget for both.

Needs `pip install --no-deps torchattacks` (torchvision is not needed for these classes).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from ecgarena.gradients import eval_mode, pgd
from ecgarena.host import Host
from ecgarena.protocols import AttackContext, Classifier, DatasetInfo
from ecgarena.specs import ThreatModel
from ecgarena.synthetic_ecg import CLASSES, LEADS, generate
from ecgarena.training import standardization
from torch import nn
from torchattacks.attacks.apgd import APGD
from torchattacks.attacks.square import Square


def data(n: int, seed: int):
    """Single-label synthetic records as a 5-class task; folds 1–8 train, 10 test."""
    x, y = generate(n, seed)
    single = y.sum(1) == 1
    fold = np.arange(n) % 10 + 1
    labels = y.argmax(1)
    train, test = single & (fold <= 8), single & (fold == 10)
    return (x[train], labels[train]), (x[test], labels[test])


def train_cnn(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> Classifier:
    torch.manual_seed(seed)
    net = Host(builtins=False).create("models", "cnn").build(x.shape[1], x.shape[2], len(CLASSES))
    clf = Classifier(net)
    clf.set_standardization(*standardization(x))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    opt = torch.optim.Adam(clf.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
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
    parser.add_argument("--records", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="APGD steps (both)")
    parser.add_argument("--queries", type=int, default=100, help="Square queries (both)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eps", type=float, default=None, help="ℓ∞ budget in mV")
    args = parser.parse_args()

    t0 = time.perf_counter()
    (x_tr, y_tr), (x_te, y_te) = data(args.n, 0)
    clf = train_cnn(x_tr, y_tr, args.epochs, 0)
    xt, yt = torch.from_numpy(x_te), torch.from_numpy(y_te).long()
    with torch.no_grad():
        right = clf(xt).argmax(1) == yt
    print(
        f"data + training {time.perf_counter() - t0:.1f}s · {len(x_tr)} train / {len(x_te)} test "
        f"records, clean accuracy {right.float().mean():.3f} (torch threads {torch.get_num_threads()})"
    )
    x, y = xt[right][: args.records], yt[right][: args.records]

    if args.eps is None:
        rates = {}
        for eps in (0.005, 0.0075, 0.01, 0.015, 0.02):
            d = pgd(clf, x, y, ThreatModel(budget_mv=eps), "multiclass", steps=10,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
            rates[eps] = fooling(clf, x, d, y)
        eps = min(rates, key=lambda e: abs(rates[e] - 0.5))
        print(
            "PGD-10 fooling rate by ε (mV): "
            + ", ".join(f"{e:g}: {r:.2f}" for e, r in rates.items())
        )
    else:
        eps = args.eps
    threat = ThreatModel(norm="linf", budget_mv=eps)
    lo, hi = float(x.min()) - 2 * eps, float(x.max()) + 2 * eps
    box = UnitBox(clf, lo, hi, grid_shape(x.shape[2])).eval()
    eps_u = eps / (hi - lo)
    u = box.to_unit(x)
    print(
        f"{len(x)} clean-correct records · ε = {eps:g} mV (box [{lo:.2f}, {hi:.2f}] mV, "
        f"ε_u = {eps_u:.3g}, grid {box.shape[0]}×{box.shape[1]}) · APGD {args.steps} steps · "
        f"Square {args.queries} queries"
    )

    host = Host(builtins=False)
    info = DatasetInfo("synthetic-single", "multiclass", CLASSES, LEADS, 100.0, x.shape[2])

    def ours(name: str, options: dict):
        def attack(seed: int) -> torch.Tensor:
            a = host.create("attacks", name, options)
            ctx = AttackContext(info, torch.device("cpu"), torch.Generator().manual_seed(seed))
            out = a.run(clf, x, y, threat, ctx)
            ours.reports[name] = a.report
            return out

        return attack

    ours.reports = {}

    def theirs(make):
        def attack(seed: int) -> torch.Tensor:
            with eval_mode(box):
                u_adv = make(seed)(u, y)
            return box.to_mv(u_adv) - x

        return attack

    steps, q = args.steps, args.queries
    contenders = {
        "apgd-ce": (
            ours("apgd-ce", {"steps": steps}),
            theirs(lambda s: APGD(box, norm="Linf", eps=eps_u, steps=steps, seed=s, loss="ce")),
        ),
        "apgd-dlr": (
            ours("apgd-dlr", {"steps": steps}),
            theirs(lambda s: APGD(box, norm="Linf", eps=eps_u, steps=steps, seed=s, loss="dlr")),
        ),
        "square": (
            ours("square", {"n_queries": q}),
            theirs(lambda s: Square(box, norm="Linf", eps=eps_u, n_queries=q, seed=s)),
        ),
    }
    times = {(a, who): [] for a in contenders for who in ("ours", "torchattacks")}
    rates = {key: [] for key in times}
    excess = {key: 0.0 for key in times}
    queries = []
    for r in range(args.repeats):
        for attack, (mine, peer) in contenders.items():
            for who, fn in (("ours", mine), ("torchattacks", peer)):
                t = time.perf_counter()
                delta = fn(r).detach()
                times[attack, who].append(time.perf_counter() - t)
                rates[attack, who].append(fooling(clf, x, delta, y))
                excess[attack, who] = max(excess[attack, who], float(delta.abs().max()) - eps)
        queries.append(ours.reports["square"]["queries_mean"])
        print(f"  repeat {r + 1}/{args.repeats} done ({time.perf_counter() - t0:.0f}s)")

    print()
    header = (
        f"{'attack':9} {'contender':13} {'median s':>9} {'min s':>8} {'fooling (mean)':>15} "
        f"{'min–max':>11} {'max |δ|−ε mV':>13}"
    )
    print(header)
    print("-" * len(header))
    for attack in contenders:
        for who in ("ours", "torchattacks"):
            ts, fr = times[attack, who], rates[attack, who]
            print(
                f"{attack:9} {who:13} {statistics.median(ts):9.2f} {min(ts):8.2f} "
                f"{statistics.fmean(fr):15.3f} {min(fr):5.3f}–{max(fr):5.3f} "
                f"{excess[attack, who]:+13.1e}"
            )
    print()
    for attack in contenders:
        mine, peer = times[attack, "ours"], times[attack, "torchattacks"]
        gap = statistics.fmean(rates[attack, "ours"]) - statistics.fmean(
            rates[attack, "torchattacks"]
        )
        print(
            f"{attack:9} time ours/theirs: median {statistics.median(mine) / statistics.median(peer):.2f}, "
            f"min {min(mine) / min(peer):.2f} · fooling ours − theirs {gap * 100:+.1f} pp"
        )
    sq = ours.reports["square"]
    print(
        f"our square: queries per record mean {statistics.fmean(queries):.1f} over repeats "
        f"(last repeat mean {sq['queries_mean']:.1f}, median {sq['queries_median']:.0f})"
    )
    print(f"total {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
