"""Every hook a plugin can implement (`@ecgarena.hookimpl`), in the style of pytest's
hookspec.py: what each receives, when the host calls it and what happens when it fails.

The host (`ecgarena.host.Host`) calls every hook through pluggy, so `tryfirst`, `trylast`,
`specname` and new-style `wrapper=True` implementations work; old-style `hookwrapper=True`,
hook names that are not below, and unmarked functions named like a hook are reported by
`ecgarena plugins` as errors of their plugin. An implementation's exception never reaches the
other plugins: it is recorded against its plugin and the call goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ecgarena")
hookimpl = pluggy.HookimplMarker("ecgarena")


@hookspec
def ecgarena_register_datasets(register: Callable[[type], None]) -> None:
    """Register Dataset classes.

    :param register: ``register(cls)`` adds ``cls`` under ``cls.name``; the class follows
        ``ecgarena.Dataset`` (options ``data_dir`` and ``cache_dir``, ``load``, ``describe``,
        ``cache_parts``) and optionally ``ecgarena.protocols.DatasetCapabilities``.

    Called once per host (the first command of a process, or ``Host()``), after every selected
    plugin is imported, with the other register hooks.

    On error: an exception is recorded against the plugin and ends only its own registrations;
    a class that breaks the protocol, or whose name another plugin took, is refused with one
    line naming the plugin, the class and what was expected.
    """


@hookspec
def ecgarena_register_models(register: Callable[[type], None]) -> None:
    """Register Model classes.

    :param register: ``register(cls)`` adds ``cls`` under ``cls.name``; ``cls(**options)
        .build(n_leads, n_samples, n_classes)`` returns an ``nn.Module`` producing logits.

    Called once per host, after every selected plugin is imported.

    On error: as ``ecgarena_register_datasets``.
    """


@hookspec
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    """Register Attack classes.

    :param register: ``register(cls)`` adds ``cls`` under ``cls.name``; the class follows
        ``ecgarena.Attack`` (``threat_model(budget_mv)``, ``run(classifier, x, y, threat,
        ctx)``) and optionally ``ecgarena.protocols.AttackCapabilities`` (``default_eps_mv``,
        ``stronger_than``, ``eot``, ``expand_budget``, ``merge_reports``), checked here.

    Called once per host, after every selected plugin is imported.

    On error: as ``ecgarena_register_datasets``.
    """


@hookspec
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    """Register Defense classes.

    :param register: ``register(cls)`` adds ``cls`` under ``cls.name``; the class follows
        ``ecgarena.Defense`` (a ``kind`` ClassVar among ``ecgarena.protocols.DEFENSE_KINDS``,
        ``build(ctx)`` returning an ``ecgarena.Classifier``, ``train(classifier, ctx)``).
        The Classifier subclasses of the plugin's package are checked against
        ``ecgarena.protocols.ClassifierCapabilities`` at the same time.

    Called once per host, after every selected plugin is imported.

    On error: as ``ecgarena_register_datasets``.
    """


@hookspec
def ecgarena_result(result: dict[str, Any]) -> None:
    """Observe a finished cell, e.g. to log it to an experiment tracker.

    :param result: the cell's JSON-ready row (``CellResult.row()``): spec, metrics, audit.

    Called by the matrix driver after each cell is stored (``ecgarena run`` and ``matrix``).

    On error: the exception becomes a warning shown with the cell (``result observer 'NAME'
    failed: ...``; the stored row is already written) and the other observers still run.
    """
