"""The plugin author kit (`pip install 'ecgarena[testing]'`): hypothesis strategies, toy
fixtures and a conformance check that runs an attack through the core's own contract and audit
(`run_audited`, as the engine does)."""

from __future__ import annotations

from collections.abc import Callable
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

from .attack_call import run_audited
from .audit import AuditReport
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


def check_attack(
    attack: Any, x: torch.Tensor, budget_mv: float | list[float], **options: Any
) -> AuditReport:
    """Run `attack` on `x` exactly as the engine does (the core's contract at `budget_mv`,
    `expand_budget` included, one audited call) and return the core's audit report;
    `options` are those of `run_attack`."""
    return run_attack(attack, x, budget_mv, **options)[1]


def run_attack(
    attack: Any,
    x: torch.Tensor,
    budget_mv: float | list[float],
    classifier: Classifier | None = None,
    fs: float = 100.0,
    task: str = "multiclass",
    n_classes: int = 3,
    seed: int = 0,
    train: Split | None = None,
    val: Split | None = None,
    y: torch.Tensor | None = None,
    leads: tuple[str, ...] | None = None,
) -> tuple[torch.Tensor, AuditReport, ThreatModel]:
    """`check_attack`, also returning δ and the contract's threat model (for plugin tests)."""
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
    contract = build_contract(attack, budget_mv, info.leads)
    done = run_audited(attack, clf, x, y, contract, ctx)
    return done.delta, done.report, contract.threat
