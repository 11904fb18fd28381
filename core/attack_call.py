"""The one audited attack call, used by the engine and by `ecgarena.testing`: snapshot the
inputs, the model's modes and its fingerprint, run the attack under the core's contract, put
the classifier back if the attack changed it, and audit what came back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .audit import AuditReport, Check, audit, modes
from .contract import Contract
from .errors import PluginError
from .integrity import capture, capture_core, changes, restore, restore_core
from .protocols import AttackContext


@dataclass(frozen=True)
class Audited:
    """δ as the attack returned it, the core's audit, and whether the classifier is intact
    (False: its structure was replaced and it must be rebuilt from its verified weights)."""

    delta: torch.Tensor
    report: AuditReport
    intact: bool = True


def contract_check(contract: Contract) -> Check:
    """The declared threat model stayed within the run's (an attack may only narrow it)."""
    ok = not contract.problems
    return Check("threat model", ok, "within the run's" if ok else "; ".join(contract.problems))


def run_audited(
    attack: Any,
    classifier: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    contract: Contract,
    ctx: AttackContext,
) -> Audited:
    """Run `attack` on `x` under `contract.threat` and audit it; any change to the
    classifier's parameters, buffers or modules, or to the core's audit code, is a violation
    and is undone before anything else runs."""
    x_before, before, state = x.clone(), modes(classifier), capture(classifier)
    core = capture_core()
    try:
        delta = attack.run(classifier, x, y, contract.threat, ctx)
    finally:
        patched = restore_core(core)
        changed = changes(classifier, state)
        intact = restore(classifier, state) if changed else True
        after = modes(classifier) if intact else before
    if not isinstance(delta, torch.Tensor):
        raise PluginError(
            f"attack {attack.name!r} returned {type(delta).__name__}, not a torch.Tensor"
        )
    report = audit(x, x_before, delta, contract.threat, ctx.info.fs, before, after)
    detail = "parameters and buffers unchanged"
    if changed:
        shown = ", ".join(changed[:4]) + (
            f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
        )
        fix = "restored" if intact else "rebuilt from its weights file"
        detail = f"the attack changed the classifier: {shown}; {fix} before evaluation"
    core_detail = (
        "the attack patched the core: " + ", ".join(patched[:4]) + "; restored before the audit"
        if patched
        else "audit code unchanged (in-process check; --isolate makes it a guarantee)"
    )
    report.checks += [
        contract_check(contract),
        Check("classifier unchanged", not changed, detail),
        Check("core untouched", not patched, core_detail),
    ]
    return Audited(delta.detach(), report, intact)


def audit_returned(
    x: torch.Tensor, delta: torch.Tensor, contract: Contract, fs: float
) -> AuditReport:
    """Audit a δ computed in an isolated process: the attack only ever had copies of `x` and
    of the classifier, so in-place edits, mode or weight changes and patches of the core
    cannot reach them here; those checks hold by construction and say so."""
    report = audit(x, x, delta.to(x.device), contract.threat, fs, [], [])
    isolated = "isolated process: the attack had a copy"
    report.checks = [
        Check(c.name, c.passed, isolated)
        if c.name in ("input unchanged", "model mode restored")
        else c
        for c in report.checks
    ]
    report.checks += [
        contract_check(contract),
        Check("classifier unchanged", True, "isolated process: reference weights kept here"),
        Check("core untouched", True, "isolated process: audited here"),
    ]
    return report
