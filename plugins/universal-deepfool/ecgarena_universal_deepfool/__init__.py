"""Universal adversarial perturbations with DeepFool steps (Moosavi-Dezfooli et al. 2017),
the SCAR seed's baseline, with its post-hoc filter: SCAR's low-pass and W-tap smoothing, then
clipping to the amplitude budget."""

from __future__ import annotations

from collections.abc import Callable

import ecgarena

from .attack import UniversalDeepFool


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(UniversalDeepFool)
