"""Universal adversarial perturbations with DeepFool steps (Moosavi-Dezfooli et al. 2017),
the SCAR seed's baseline, with its post-hoc low-pass filter."""

from __future__ import annotations

from collections.abc import Callable

import ecgarena

from .attack import UniversalDeepFool


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(UniversalDeepFool)
