"""Crafting a cell's perturbation: the attack in batches under the core's contract, each call
audited, in this process or (`--isolate`) in a separate one; universal perturbations are
fitted once, stored with their spec and reused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .attack_call import audit_returned, contract_check, merged_report, run_audited
from .audit import AuditReport, audit, modes
from .contract import Contract
from .isolate import craft_isolated
from .protocols import AttackContext
from .specs import RunSpec
from .training import to_tensor


@dataclass(frozen=True)
class Target:
    """The classifier an attack is crafted on: its spec (so an isolated process can rebuild
    it), its weights key, the live module, and how to drop it when an attack replaced parts
    of it."""

    spec: RunSpec
    key: str
    get: Callable[[], nn.Module]
    forget: Callable[[], None]
    member: int | None = None

    def module(self) -> nn.Module:
        clf = self.get()
        return clf if self.member is None else clf.members[self.member]


@dataclass(frozen=True)
class Crafted:
    """δ for every attacked record (broadcast), the merged audit, and the attack's report
    merged over its batch calls by the attack's own rule (`merged_report`)."""

    delta: np.ndarray
    audit: AuditReport
    report: dict[str, Any] | None = None


def craft_batches(
    attack: Any,
    contract: Contract,
    target: Target,
    x_np: np.ndarray,
    y_np: np.ndarray,
    ctx: AttackContext,
    isolate_home: Path | None = None,
) -> Crafted:
    """Attack `target.spec.attack_batch` records per call; each call is audited and its report
    kept for the attack's merge rule. With `isolate_home` the calls run in a child process that
    rebuilds the classifier from the cached weights there."""
    deltas, audits, reports = [], [], []
    n = target.spec.attack_batch
    if isolate_home is not None:
        returned, reports = craft_isolated(
            isolate_home, target.spec, target.member, contract.threat, x_np, y_np, n
        )
        for i, delta in enumerate(returned):
            x = to_tensor(x_np[i * n : (i + 1) * n], ctx.device).float()
            d = torch.from_numpy(delta)
            audits.append(audit_returned(x, d, contract, ctx.info.fs))
            deltas.append(np.broadcast_to(d.float().numpy(), x.shape))
    else:
        for i in range(0, len(x_np), n):
            x = to_tensor(x_np[i : i + n], ctx.device).float()
            y = to_tensor(y_np[i : i + n], ctx.device)
            done = run_audited(attack, target.module(), x, y, contract, ctx)
            if not done.intact:
                target.forget()
            audits.append(done.report)
            reports.append(done.attack_report)
            deltas.append(np.broadcast_to(done.delta.float().cpu().numpy(), x.shape))
    delta = np.concatenate(deltas).astype(np.float32, copy=False) if deltas else np.zeros_like(x_np)
    sizes = [len(d) for d in deltas]
    return Crafted(delta, AuditReport.merge(audits, sizes), merged_report(attack, reports))


def audit_stored(
    v: torch.Tensor, x_np: np.ndarray, contract: Contract, ctx: AttackContext, clf: nn.Module
) -> AuditReport:
    """Audit a stored universal δ against this cell's contract on the attacked records."""
    x = to_tensor(x_np, ctx.device).float()
    report = audit(x, x.clone(), v, contract.threat, ctx.info.fs, modes(clf), modes(clf))
    report.checks.append(contract_check(contract))
    return report
