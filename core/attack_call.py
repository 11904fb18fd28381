"""The one audited attack call, used by the engine and by `ecgarena.testing`: snapshot the
inputs, the model's modes and its fingerprint, run the attack under the core's contract, put
the classifier back if the attack changed it, and audit what came back; and how the attack's
per-call reports become the cell's one report."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .audit import AuditReport, Check, audit, modes
from .contract import Contract
from .errors import PluginError
from .integrity import capture, capture_core, changes, restore, restore_core
from .protocols import AttackContext, Attacked


@dataclass(frozen=True)
class Audited:
    """δ as the attack returned it, the core's audit, whether the classifier is intact (False:
    its structure was replaced and it must be rebuilt from its verified weights), and the
    attack's report of this call (a JSON copy; None when it returned bare δ)."""

    delta: torch.Tensor
    report: AuditReport
    intact: bool = True
    attack_report: dict[str, Any] | None = None


def json_report(name: str, report: Any) -> dict[str, Any]:
    """A JSON copy of an attack's report (NaN allowed: the result nulls it with the reason);
    a PluginError naming the attack when it is not a dict of JSON values."""
    try:
        if not isinstance(report, dict):
            raise TypeError(f"got {type(report).__name__}")
        copy = json.loads(json.dumps(report))
    except (TypeError, ValueError) as e:
        raise PluginError(
            f"attack {name!r}: its report is not a JSON dict ({str(e)[:100]}); use a dict of "
            "str, int, float, bool, None, lists and dicts"
        ) from None
    warnings = copy.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise PluginError(
            f"attack {name!r}: its report's warnings are {str(warnings)[:80]}; use a list of strings"
        )
    return copy


def unpack(name: str, returned: Any) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """δ and the JSON-checked report from what `Attack.run` returned (δ or `Attacked`)."""
    delta, report = (
        (returned.delta, json_report(name, returned.report))
        if isinstance(returned, Attacked)
        else (returned, None)
    )
    if not isinstance(delta, torch.Tensor):
        raise PluginError(
            f"attack {name!r} returned {type(delta).__name__}, not a torch.Tensor "
            "(return δ or ecgarena.Attacked(delta, report))"
        )
    return delta, report


def merged_report(attack: Any, reports: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The cell's report from one report per batch call: the attack's `merge_reports` rule
    when it declares one, else the only report, else `{"batches": [...]}` with every batch's
    warnings pooled (once each)."""
    given = [r for r in reports if r is not None]
    if not given:
        return None
    rule = inspect.getattr_static(type(attack), "merge_reports", None)
    if rule is None and len(given) == 1:
        return given[0]
    if rule is None:
        warnings = [w for r in given for w in r.get("warnings", [])]
        return {"batches": given, "warnings": list(dict.fromkeys(warnings))}
    if not isinstance(rule, classmethod | staticmethod):
        raise PluginError(
            f"attack {attack.name!r}.merge_reports is {type(rule).__name__}; declare it a "
            "staticmethod or classmethod of the reports alone"
        )
    return json_report(attack.name, type(attack).merge_reports(given))


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
        returned = attack.run(classifier, x, y, contract.threat, ctx)
    finally:
        patched = restore_core(core)
        changed = changes(classifier, state)
        intact = restore(classifier, state) if changed else True
        after = modes(classifier) if intact else before
    delta, attack_report = unpack(attack.name, returned)
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
    return Audited(delta.detach(), report, intact, attack_report)


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
