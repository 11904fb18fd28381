"""What the core reads from a registered class (the protocols' required members and optional
capabilities) and how each must be declared; `problems` checks a class when its plugin registers
and says, one line each, what is wrong."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from torch import nn

from .protocols import DEFENSE_KINDS, Classifier

Piece = Literal["datasets", "models", "attacks", "defenses", "classifier"]
Check = Callable[[type, str], str | None]  # what is wrong with `cls.<name>`, None when fine
NOUNS: dict[Piece, str] = {
    "datasets": "dataset",
    "models": "model",
    "attacks": "attack",
    "defenses": "defense",
    "classifier": "classifier",
}


@dataclass(frozen=True)
class Member:
    """One member the core reads: how it is checked, what a valid one is, and whether it is
    required or meaningless without another member (`needs`)."""

    name: str
    check: Check
    expected: str
    required: bool = False
    needs: str | None = None


def _fields(cls: type) -> dict[str, Any]:
    return cls.model_fields if isinstance(cls, type) and issubclass(cls, BaseModel) else {}


def _declared(cls: type, name: str) -> bool:
    if name in _fields(cls):
        return True
    try:
        inspect.getattr_static(cls, name)
    except AttributeError:
        return False
    return True


def method(n_args: int, static: bool = False) -> Check:
    """A method the core calls with `n_args` positional arguments (`static`: a staticmethod or
    classmethod, called on the class)."""

    def check(cls: type, name: str) -> str | None:
        raw = inspect.getattr_static(cls, name, None)
        if isinstance(raw, property) or name in _fields(cls):
            return "is an attribute, not a method"
        if static and not isinstance(raw, staticmethod | classmethod):
            return f"is {'a plain method' if inspect.isfunction(raw) else type(raw).__name__}"
        if not callable(getattr(cls, name)):
            return f"is {type(raw).__name__} {raw!r:.40}, not callable"
        bound = isinstance(raw, staticmethod | classmethod) or not inspect.isfunction(raw)
        try:
            signature = inspect.signature(getattr(cls, name))
        except (TypeError, ValueError):  # a builtin without a signature: trust it
            return None
        try:
            signature.bind(*[None] * (n_args + (0 if bound else 1)))
        except TypeError:
            return f"has signature {signature}"
        return None

    return check


def value(ok: Callable[[Any], bool], on_class: bool = False) -> Check:
    """A value the core reads (`on_class`: from the class itself, so a ClassVar); a property
    or pydantic option is accepted for instance values, its value checked when it is used."""

    def check(cls: type, name: str) -> str | None:
        field = _fields(cls).get(name)
        if field is not None:
            if on_class:
                return "is a pydantic option; the core reads it from the class (use ClassVar)"
            return None if field.is_required() or ok(field.default) else f"is {field.default!r}"
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, property):
            return "is a property; the core reads it from the class" if on_class else None
        return None if ok(raw) else f"is {raw!r:.60}"

    return check


def option(cls: type, name: str) -> str | None:
    """An option the core passes when it creates the class (a pydantic field or a keyword)."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        if name in cls.model_fields or cls.model_config.get("extra") == "allow":
            return None
        return "is not an option"
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.name == name or p.kind is p.VAR_KEYWORD for p in params):
        return None
    return "is not accepted by its constructor"


def _positive_float(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _names(v: Any) -> bool:
    return isinstance(v, tuple) and all(isinstance(n, str) and n for n in v)


def _strings(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(isinstance(n, str) for n in v)


MEMBERS: dict[Piece, tuple[Member, ...]] = {
    "datasets": (
        Member("load", method(1), "a method load(split) -> Split", required=True),
        Member("describe", method(0), "a method describe() -> dict", required=True),
        Member("cache_parts", method(0), "a method cache_parts() -> dict", required=True),
        Member("data_dir", option, "an option data_dir: Path | None", required=True),
        Member("cache_dir", option, "an option cache_dir: Path", required=True),
        Member("notes", value(_strings), "a list of str (caveats shown with each cell)"),
    ),
    "models": (Member("build", method(3), "a method build(n_leads, n_samples, n_classes)", True),),
    "attacks": (
        Member("threat_model", method(1), "a method threat_model(budget_mv)", required=True),
        Member("run", method(5), "a method run(classifier, x, y, threat, ctx)", required=True),
        Member(
            "default_eps_mv",
            value(_positive_float, on_class=True),
            "a positive float ClassVar, in mV",
        ),
        Member(
            "stronger_than",
            value(_names, on_class=True),
            "a ClassVar tuple of attack names (str), e.g. ('noise', 'fgsm')",
        ),
        Member("eot", value(lambda v: isinstance(v, bool)), "a bool"),
        Member("expand_budget", method(2), "a method expand_budget(eps_mv, leads)"),
        Member(
            "merge_reports",
            method(1, static=True),
            "a staticmethod or classmethod merge_reports(reports) -> dict",
        ),
    ),
    "defenses": (
        Member(
            "kind",
            value(lambda v: v in DEFENSE_KINDS, on_class=True),
            f"a ClassVar, one of {', '.join(DEFENSE_KINDS)}",
            required=True,
        ),
        Member("build", method(1), "a method build(ctx) -> Classifier", required=True),
        Member("train", method(2), "a method train(classifier, ctx) -> dict", required=True),
    ),
    "classifier": (
        Member("certify", method(1), "a method certify(x) -> (labels, radii in mV)"),
        Member(
            "certified_norm",
            value(lambda v: v in ("l2", "linf")),
            "'l2' or 'linf'",
            needs="certify",
        ),
        Member("certify_passes", value(_positive_int), "a positive int", needs="certify"),
        Member("decide", method(1), "a method decide(x) -> labels (−1: abstain)"),
        Member(
            "decision_rule",
            value(lambda v: isinstance(v, str) and v != ""),
            "a non-empty str",
            needs="decide",
        ),
        Member("members", value(lambda v: isinstance(v, nn.ModuleList)), "an nn.ModuleList"),
    ),
}


def problems(piece: Piece, cls: type) -> list[str]:
    """One line per required member missing or member declared wrongly on `cls`."""
    label = f"{NOUNS[piece]} class {getattr(cls, '__qualname__', repr(cls))}"
    if piece != "classifier":
        label += f" ({getattr(cls, 'name', '?')!r})"
    out = []
    for m in MEMBERS[piece]:
        if m.check is not option and not _declared(cls, m.name):  # options: constructor
            if m.required:
                out.append(f"{label}: {m.name} is missing; expected {m.expected}")
            continue
        wrong = m.check(cls, m.name)
        if wrong is not None:
            out.append(f"{label}: {m.name} {wrong}; expected {m.expected}")
        elif m.needs is not None and not _declared(cls, m.needs):
            out.append(f"{label}: {m.name} is declared without {m.needs}, so it is never used")
    return out


def hookimpl_problem(
    attr: str, opts: dict[str, Any] | None, function: Any, hooks: tuple[str, ...]
) -> str | None:
    """Why the host cannot call plugin attribute `attr` (its pluggy hookimpl options `opts`)
    as an ecgarena hook, or None: unknown hook names, old-style hookwrappers, unmarked hooks."""
    hook = (opts or {}).get("specname") or attr
    if opts is None:
        unmarked = hook in hooks and callable(function)
        return (
            f"{attr} is not marked @ecgarena.hookimpl, so it is never called" if unmarked else None
        )
    if hook not in hooks:
        return f"{hook} is not an ecgarena hook (valid: {', '.join(hooks)})"
    if opts.get("hookwrapper"):
        return f"{attr} uses hookwrapper=True; ecgarena hooks take wrapper=True"
    if opts.get("wrapper") and not inspect.isgeneratorfunction(function):
        return f"{attr} has wrapper=True but is not a generator function"
    return None


def classifier_classes(package: str) -> list[type]:
    """The Classifier subclasses defined (so far imported) in `package` and its modules."""
    found, todo = [], list(Classifier.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__ == package or cls.__module__.startswith(package + "."):
            found.append(cls)
    return sorted(set(found), key=lambda c: (c.__module__, c.__qualname__))
