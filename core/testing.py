"""The plugin author kit (`pip install 'ecgarena[testing]'`): hypothesis strategies, toy
fixtures and conformance checks. `check_attack` runs an attack through the engine's own path
(the core's default budget and contract, `run_audited`, the attack's report merge rule);
`check_defense` and `check_dataset` (in `testing_defense` / `testing_dataset`, re-exported
here) check what a defense's classifier and a dataset's splits do against what they claim."""

from __future__ import annotations

from dataclasses import dataclass
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
from .protocols import AttackContext, Classifier, DatasetInfo, Split
from .specs import ThreatModel
from .testing_dataset import MAX_MEDIAN_ABS_MV, MIN_PEAK_MV, DatasetChecked, check_dataset
from .testing_defense import (
    DefenseChecked,
    TinyNet,
    check_defense,
    tiny_classifier,
    toy_fit_context,
)

__all__ = [
    "MAX_MEDIAN_ABS_MV",
    "MIN_PEAK_MV",
    "Checked",
    "DatasetChecked",
    "DefenseChecked",
    "TinyNet",
    "budgets",
    "check_attack",
    "check_dataset",
    "check_defense",
    "signals",
    "threat_models",
    "tiny_classifier",
    "toy_fit_context",
]


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
