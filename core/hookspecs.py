"""Every hook a plugin can implement; each receives a `register` callback (as in `llm`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ecgarena")
hookimpl = pluggy.HookimplMarker("ecgarena")


@hookspec
def ecgarena_register_datasets(register: Callable[[type], None]) -> None:
    """Register Dataset classes: `register(MyDataset)`; each has a unique `name`."""


@hookspec
def ecgarena_register_models(register: Callable[[type], None]) -> None:
    """Register Model classes: `register(MyModel)`; `build()` returns logits-producing nets."""


@hookspec
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    """Register Attack classes: `register(MyAttack)`; each declares a ThreatModel."""


@hookspec
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    """Register Defense classes: `register(MyDefense)`; each builds and trains a Classifier."""


@hookspec
def ecgarena_result(result: dict[str, Any]) -> None:
    """Observe each finished cell (a JSON-ready dict), e.g. to log it elsewhere."""
