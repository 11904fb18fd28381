"""Honesty checks on a finished cell: gradients that vanish, randomized defenses attacked
without EOT, BPDA, a defense kind its classifier contradicts, and consistency with the other
stored cells on the same classifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .gradients import eval_mode
from .host import Host
from .protocols import Classifier
from .result import CellResult
from .store import Store
from .tables import summary_row
from .training import task_loss, to_tensor

CONSISTENCY_TOLERANCE = 0.02  # metric gap ignored when comparing stored cells
VARYING = {"attack", "attack_params", "eps", "device", "data_dir", "eval_data_dir"}


def gradient_warnings(
    clf: Classifier, attack: Any, x_np: np.ndarray, y_np: np.ndarray, task: str, device: Any
) -> list[str]:
    """Vanishing/NaN input gradients, randomized defenses attacked without EOT, BPDA."""
    out = []
    x = to_tensor(x_np[:64], device).float().requires_grad_(True)
    with eval_mode(clf):
        loss = task_loss(clf(x), to_tensor(y_np[:64], device), task)
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None or not torch.isfinite(grad).all():
        out.append("input gradient is missing or NaN: gradient-based attacks are meaningless here")
    elif (grad.flatten(1).abs().sum(1) == 0).float().mean() > 0.5:
        out.append("input gradient is zero for most records: possible gradient masking")
    if (
        not clf.info.deterministic
        and clf.info.gradient != "eot"
        and not getattr(attack, "eot", False)
    ):
        out.append(
            f"randomized defense attacked by {attack.name!r} without EOT: robustness overstated"
        )
    if clf.info.gradient == "bpda":
        out.append("a preprocessing step is attacked through BPDA (identity backward)")
    return out


def kind_warnings(kind: str, clf: Classifier) -> list[str]:
    """Where the defense's declared `kind` and the classifier it built disagree (a certified
    defense that certifies nothing, an ensemble without members, a defense of kind "none"
    that preprocesses): the label in tables would mislead."""
    members = isinstance(getattr(clf, "members", None), torch.nn.ModuleList)
    contradicted = {  # kind: (whether the classifier contradicts it, what it built instead)
        "certified": (
            not clf.info.certifies,
            "a classifier without a certificate (info.certifies is False)",
        ),
        "ensemble": (not members, "a classifier without `members`"),
        "none": (
            not isinstance(clf.preprocess, torch.nn.Identity),
            f"a classifier that preprocesses ({type(clf.preprocess).__name__})",
        ),
    }
    wrong, built = contradicted.get(kind, (False, ""))
    return [f"defense kind {kind!r} but it built {built}"] if wrong else []


def consistency(host: Host, store: Store, result: CellResult) -> list[str]:
    """Compare with stored cells on the same classifier and records: a weaker attack (one a
    stronger attack's class lists in `stronger_than`) or a smaller budget of the same attack
    must not do more damage; when it does, the stronger run is failing (gradient masking, too
    few steps) and its robust number is overstated. Only cells compared on the same headline
    metric count, so a gap is never excused by another metric's saturation (e.g. exact-match
    accuracy at 0 while AUROC still moves)."""
    mine, spec = summary_row(result), result.spec
    metric = mine["metric"]
    base = {k: v for k, v in spec.items() if k not in VARYING}

    def stronger(a: str, b: str) -> bool:
        entry = host.entries["attacks"].get(a)
        return entry is not None and b in getattr(entry.cls, "stronger_than", ())

    out = []
    same = {c: spec[c] for c in ("dataset", "model", "defense", "seed")}
    for other in store.results(**same):
        o = other.spec
        if other.status != "done" or other.key == result.key:
            continue
        if not other.passed:
            continue  # a cell that broke its threat model proves nothing about others
        if {k: v for k, v in o.items() if k not in VARYING} != base:
            continue
        theirs = summary_row(other)
        if theirs["metric"] != metric or None in (mine["adversarial"], theirs["adversarial"]):
            continue
        gap = mine["adversarial"] - theirs["adversarial"]  # > 0: the other did more damage
        if abs(gap) <= CONSISTENCY_TOLERANCE:
            continue
        low, high = sorted((mine["adversarial"], theirs["adversarial"]))
        weaker, strong = (o, spec) if gap > 0 else (spec, o)
        same_attack = (o["attack"], o["attack_params"]) == (spec["attack"], spec["attack_params"])
        if o["eps"] == spec["eps"] and stronger(strong["attack"], weaker["attack"]):
            out.append(
                f"{weaker['attack']!r} does more damage than the stronger {strong['attack']!r}"
                f" at the same budget ({metric} {low:.3f} vs {high:.3f}): the stronger "
                "attack is failing (gradient masking or too few steps)"
            )
        elif same_attack and isinstance(o["eps"], float) and isinstance(spec["eps"], float):
            small, large = sorted((o, spec), key=lambda sp: sp["eps"])
            if (gap > 0) == (large is spec) and o["eps"] != spec["eps"]:
                out.append(
                    f"{spec['attack']!r} at the larger budget {large['eps']} mV does less damage"
                    f" than at {small['eps']} mV ({metric} {low:.3f} vs {high:.3f}): robustness"
                    " is not monotone in ε, a sign of a failing attack"
                )
    return out
