"""SCAR (seed paper): a band-limited, lead-budgeted universal perturbation, and adversarial
training against it (`scar-at`, `hybrid-at`)."""

from __future__ import annotations

from collections.abc import Callable

import ecgarena

from .attack import SCARAttack
from .training import HybridTraining, SCARTraining


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(SCARAttack)


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(SCARTraining)
    register(HybridTraining)
