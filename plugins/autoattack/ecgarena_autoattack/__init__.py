"""AutoAttack for ECG in mV (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks"; Square: Andriushchenko et al.,
ECCV 2020): `apgd-ce`, `apgd-dlr` (untargeted or targeted), `square` and `auto`, the per-record
worst case over the three in AutoAttack's order.

Losses: multiclass CE / DLR / targeted DLR as in the paper. Multilabel: APGD-CE ascends
BCE-with-logits **meaned** over the labels; APGD-DLR is replaced by the per-label margin loss
−min_c (2y_c − 1)·z_c (push the label nearest to a flip, `ecgarena.margin`); Square
uses that same margin. "Misclassified" always means margin < 0 (multiclass: argmax ≠ y;
multilabel: some label's 0-logit threshold crossed).

Each call returns δ with its report (`ecgarena.Attacked`); each attack's `merge_reports` pools
the engine's batch calls into the cell's report (counts summed, per-record values joined), and
`report["warnings"]` lists the cell's warnings.
"""

from __future__ import annotations

from collections.abc import Callable

import ecgarena

from .apgd import checkpoints, run_apgd
from .apgd_attacks import APGDCEAttack, APGDDLRAttack
from .auto import AutoAttack
from .losses import dlr_loss, dlr_targeted_loss, objective
from .square import p_schedule, run_square
from .square_attack import SquareAttack

__all__ = [
    "APGDCEAttack",
    "APGDDLRAttack",
    "AutoAttack",
    "SquareAttack",
    "checkpoints",
    "dlr_loss",
    "dlr_targeted_loss",
    "objective",
    "p_schedule",
    "run_apgd",
    "run_square",
]


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(APGDCEAttack)
    register(APGDDLRAttack)
    register(SquareAttack)
    register(AutoAttack)
