"""A fingerprint of a classifier (parameters, buffers, structure), so the core can prove an
attack left it as it found it, and put it back when it did not."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _structure(model: nn.Module) -> tuple[tuple[str, str, bool], ...]:
    """Each submodule's name, class and whether its instance overrides `forward`."""
    return tuple(
        (name, f"{type(m).__module__}.{type(m).__qualname__}", "forward" in vars(m))
        for name, m in model.named_modules()
    )


@dataclass(frozen=True)
class ModelState:
    """Copies of every parameter and buffer, and the module structure, at one moment."""

    tensors: dict[str, torch.Tensor]
    structure: tuple[tuple[str, str, bool], ...]


def capture(model: nn.Module) -> ModelState:
    """Snapshot `model` (detached clones on their own device)."""
    tensors = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    return ModelState(tensors, _structure(model))


def changes(model: nn.Module, state: ModelState) -> list[str]:
    """What differs from `state`: changed, added or removed tensors, a changed structure."""
    out = []
    if _structure(model) != state.structure:
        out.append("module structure or forward methods replaced")
    now = model.state_dict(keep_vars=True)
    for name in sorted(set(now) | set(state.tensors)):
        a, b = now.get(name), state.tensors.get(name)
        if a is None or b is None:
            out.append(f"{name} {'removed' if a is None else 'added'}")
        elif a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a.detach(), b):
            out.append(f"{name} changed")
    return out


def restore(model: nn.Module, state: ModelState) -> bool:
    """Put the captured values back in place; False when the structure itself changed (the
    caller must then rebuild the classifier from its verified weights)."""
    if _structure(model) != state.structure:
        return False
    try:
        with torch.no_grad():
            model.load_state_dict(state.tensors, strict=True)
    except RuntimeError:
        return False
    return not changes(model, state)


GUARDED = (
    "artifacts",
    "attack_call",
    "audit",
    "bootstrap",
    "cell",
    "checks",
    "constraints",
    "contract",
    "crafting",
    "gate",
    "integrity",
    "metrics",
    "resources",
    "result",
)


@dataclass(frozen=True)
class CoreState:
    """The bindings (functions, classes, constants, methods) of the core's audit path, and the
    code of every function among them, keyed by (namespace, name)."""

    bindings: dict[tuple[str, str], object]
    code: dict[tuple[str, str], object]


def _namespaces() -> dict[str, object]:
    """The guarded modules and the classes they define."""
    import importlib

    out: dict[str, object] = {}
    for name in GUARDED:
        mod = importlib.import_module(f"{__package__}.{name}")
        out[name] = mod
        for attr, value in vars(mod).items():
            if isinstance(value, type) and value.__module__ == mod.__name__:
                out[f"{name}.{attr}"] = value
    return out


def _code_of(value: object) -> object | None:
    target = value.fget if isinstance(value, property) else value
    return getattr(target, "__code__", None)


def capture_core() -> CoreState:
    """Snapshot what an in-process attack could patch to talk the audit round."""
    bindings, code = {}, {}
    for ns_name, ns in _namespaces().items():
        for name, value in list(vars(ns).items()):
            if name.startswith("__"):
                continue
            bindings[(ns_name, name)] = value
            if _code_of(value) is not None:
                code[(ns_name, name)] = _code_of(value)
    return CoreState(bindings, code)


def restore_core(state: CoreState) -> list[str]:
    """Put back every changed binding or function body; returns what had been changed."""
    changed = []
    spaces = _namespaces()
    for (ns_name, name), value in state.bindings.items():
        ns = spaces.get(ns_name)
        if ns is None:
            continue
        if vars(ns).get(name, _MISSING) is not value:
            changed.append(f"{ns_name}.{name}")
            setattr(ns, name, value)
        code = state.code.get((ns_name, name))
        if code is not None and _code_of(value) is not code:
            changed.append(f"{ns_name}.{name}.__code__")
            target = value.fget if isinstance(value, property) else value
            target.__code__ = code
    return changed


_MISSING = object()
