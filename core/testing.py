"""The plugin author kit (`pip install 'ecgarena[testing]'`): hypothesis strategies, toy
fixtures and a conformance check that runs an attack through the engine's own path: the
core's default budget and contract, `run_audited`, the attack's report merge rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

try:
    from hypothesis import strategies as st
except ModuleNotFoundError as e:  # the kit's dependencies are the `testing` extra
    raise ModuleNotFoundError(
        f"ecgarena.testing needs {e.name}: pip install 'ecgarena[testing]'", name=e.name
    ) from None

from .attack_call import merged_report, run_audited
from .audit import AuditReport
from .cell import DEFAULT_EPS_MV
from .contract import build_contract
from .protocols import AttackContext, Classifier, DatasetInfo, FitContext, Split
from .specs import ThreatModel, TrainSpec


def budgets(n_leads: int, max_mv: float = 1.0) -> st.SearchStrategy[float | list[float]]:
    """A scalar budget or a per-lead vector, in mV (0 included)."""
    value = st.floats(0.0, max_mv, allow_nan=False)
    return st.one_of(value, st.lists(value, min_size=n_leads, max_size=n_leads))


def threat_models(n_leads: int) -> st.SearchStrategy[ThreatModel]:
    """ℓ∞ or ℓ2 threat models with scalar or per-lead budgets."""
    return st.builds(ThreatModel, norm=st.sampled_from(["linf", "l2"]), budget_mv=budgets(n_leads))


def signals(batch: int = 4, leads: int = 2, time: int = 64) -> st.SearchStrategy[torch.Tensor]:
    """Float32 `(batch, leads, time)` signals in mV, bounded like ECG (±5 mV)."""
    return st.integers(0, 2**31 - 1).map(
        lambda seed: torch.from_numpy(
            np.random.default_rng(seed)
            .normal(0, 1, (batch, leads, time))
            .clip(-5, 5)
            .astype(np.float32)
        )
    )


class TinyNet(nn.Module):
    """A minimal differentiable classifier for conformance tests."""

    def __init__(self, leads: int, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(leads, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))).mean(-1))


def tiny_classifier(leads: int = 2, n_classes: int = 3, seed: int = 0) -> Classifier:
    """A `TinyNet` classifier in eval mode, its weights from `torch.manual_seed(seed)`."""
    torch.manual_seed(seed)
    return Classifier(TinyNet(leads, n_classes)).eval()


def toy_fit_context(
    n: int = 48,
    time: int = 32,
    build_net: Callable[[], nn.Module] | None = None,
    epochs: int = 2,
    batch_size: int = 16,
    cache_dir: Path | None = None,
    seed: int = 0,
) -> FitContext:
    """A 2-lead, 2-class FitContext (class = sign of lead I's mean) for quick defense tests;
    the default net is a linear layer over the flattened record."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 2, time)).astype(np.float32)
    y = (x[:, 0].mean(axis=1) > 0).astype(np.int64)
    info = DatasetInfo("toy", "multiclass", ("a", "b"), ("I", "II"), 100.0, time)
    return FitContext(
        info,
        Split(x, y, []),
        Split(x, y, []),
        build_net or (lambda: nn.Sequential(nn.Flatten(), nn.Linear(2 * time, 2))),
        TrainSpec(epochs=epochs, batch_size=batch_size),
        torch.device("cpu"),
        seed,
        cache_dir=cache_dir,
    )


@dataclass(frozen=True)
class Checked:
    """What `check_attack` returns: δ as the attack returned it, the core's audit, the
    attack's report (through its merge rule, as the engine stores it) and the contract's
    threat model (what the attack was given)."""

    delta: torch.Tensor
    audit: AuditReport
    attack_report: dict[str, Any] | None
    threat: ThreatModel


def check_attack(
    attack: Any,
    x: torch.Tensor,
    budget_mv: float | list[float] | None = None,
    classifier: Classifier | None = None,
    fs: float = 100.0,
    task: str = "multiclass",
    n_classes: int = 3,
    seed: int = 0,
    train: Split | None = None,
    val: Split | None = None,
    y: torch.Tensor | None = None,
    leads: tuple[str, ...] | None = None,
) -> Checked:
    """Run `attack` on `x` as the engine runs one batch: the core's contract at `budget_mv`
    (default: the attack's `default_eps_mv`, else the core's), `expand_budget` included, one
    `run_audited` call (the engine makes one per `ATTACK_BATCH` records), the report merged
    by the attack's rule. Defaults: `tiny_classifier`, seeded random labels, leads L0, L1, …"""
    n_leads = x.shape[1]
    clf = classifier or tiny_classifier(n_leads, n_classes, seed)
    info = DatasetInfo(
        "conformance",
        task,
        tuple(f"c{i}" for i in range(n_classes)),
        leads or tuple(f"L{i}" for i in range(n_leads)),
        fs,
        x.shape[2],
    )
    if y is None:
        y = torch.randint(0, n_classes, (len(x),), generator=torch.Generator().manual_seed(seed))
        if task == "multilabel":
            y = nn.functional.one_hot(y, n_classes).float()
    ctx = AttackContext(info, x.device, torch.Generator().manual_seed(seed), train=train, val=val)
    eps = (
        getattr(type(attack), "default_eps_mv", DEFAULT_EPS_MV) if budget_mv is None else budget_mv
    )
    contract = build_contract(attack, eps, info.leads)
    done = run_audited(attack, clf, x, y, contract, ctx)
    return Checked(
        done.delta, done.report, merged_report(attack, [done.attack_report]), contract.threat
    )
