"""The pluggy host: finds plugins through the `ecgarena` entry-point group and collects what
they register, attributing every name to its plugin and never letting one broken plugin hide
the others."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, ValidationError

from . import hookspecs
from .errors import PluginError, UserError
from .specs import describe_validation_error

Kind = Literal["datasets", "models", "attacks", "defenses"]
KINDS: tuple[Kind, ...] = ("datasets", "models", "attacks", "defenses")
GROUP = "ecgarena"
CORE = "ecgarena"


@dataclass
class PluginRecord:
    """One loaded (or failed) plugin: where it comes from and what it registered."""

    name: str
    distribution: str | None = None
    version: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Entry:
    """A registered class and the plugin that registered it."""

    name: str
    kind: Kind
    cls: type
    plugin: str


def _names(env: str) -> set[str] | None:
    raw = os.environ.get(env)
    return None if raw is None else {n.strip() for n in raw.split(",") if n.strip()}


class Host:
    """Loads plugins once and answers `get(kind, name)` / `create(kind, name, options)`."""

    def __init__(self, eps: Iterable[EntryPoint] | None = None, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.entries: dict[Kind, dict[str, Entry]] = {k: {} for k in KINDS}
        self.clashes: list[str] = []
        if builtins:
            from . import builtins as core_builtins

            self.add(core_builtins, CORE, distribution="ecgarena", version=_version("ecgarena"))
        allow, block = _names("ECGARENA_PLUGINS"), _names("ECGARENA_DISABLE_PLUGINS")
        for ep in entry_points(group=GROUP) if eps is None else eps:
            if (allow is not None and ep.name not in allow) or (block and ep.name in block):
                continue
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                ep.name, dist.name if dist else None, dist.version if dist else None
            )
            try:
                module = ep.load()
            except Exception as e:  # a broken plugin is reported, never fatal
                record.errors.append(f"import failed: {type(e).__name__}: {e}")
                self.plugins[ep.name] = record
                continue
            self.add(module, ep.name, record.distribution, record.version)

    def add(
        self,
        plugin: ModuleType | object,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Register one plugin object and collect its registrations (also used by tests)."""
        record = self.plugins.setdefault(name, PluginRecord(name, distribution, version))
        try:
            self.pm.register(plugin, name=name)
        except Exception as e:
            record.errors.append(f"register failed: {type(e).__name__}: {e}")
            return record
        for kind in KINDS:
            hook = getattr(self.pm.hook, f"ecgarena_register_{kind}")
            for impl in hook.get_hookimpls():
                if impl.plugin_name == name:
                    self._collect(kind, impl.function, record)
        return record

    def _collect(self, kind: Kind, function: Any, record: PluginRecord) -> None:
        def register(cls: type) -> None:
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"{cls!r} has no string `name` attribute")
            known = self.entries[kind].get(name)
            if known is not None:
                msg = (
                    f"{kind[:-1]} name {name!r} is registered by both plugin {known.plugin!r} "
                    f"and plugin {record.name!r}"
                )
                self.clashes.append(msg)
                record.errors.append(msg)
                return
            self.entries[kind][name] = Entry(name, kind, cls, record.name)
            record.registers.setdefault(kind, []).append(name)

        try:
            function(register=register)
        except Exception as e:
            record.errors.append(f"ecgarena_register_{kind} failed: {type(e).__name__}: {e}")

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: Kind, name: str) -> Entry:
        """Look a name up; unknown names and clashes are one-line errors with suggestions."""
        clash = [c for c in self.clashes if f"name {name!r} " in c and c.startswith(kind[:-1])]
        if clash:
            raise PluginError(clash[0] + "; uninstall or disable one (ECGARENA_DISABLE_PLUGINS)")
        if name in self.entries[kind]:
            return self.entries[kind][name]
        valid = self.names(kind)
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise PluginError(
            f"unknown {kind[:-1]} {name!r}{hint} (available: {', '.join(valid) or 'none'})"
        )

    def create(self, kind: Kind, name: str, options: dict[str, Any] | None = None) -> Any:
        """Instantiate a registered class with its options, validated when it is pydantic."""
        cls = self.get(kind, name).cls
        options = dict(options or {})
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            try:
                return cls.model_validate(options)
            except ValidationError as e:
                raise UserError(
                    describe_validation_error(f"{kind[:-1]} {name!r} options", e)
                ) from None
        try:
            return cls(**options)
        except TypeError as e:
            raise UserError(f"invalid {kind[:-1]} {name!r} options {options}: {e}") from None

    def notify_result(self, result: dict[str, Any]) -> list[str]:
        """Call every result observer; an observer's failure becomes a warning, not a crash."""
        warnings = []
        for impl in self.pm.hook.ecgarena_result.get_hookimpls():
            try:
                impl.function(result=result)
            except Exception as e:
                warnings.append(f"result observer {impl.plugin_name!r} failed: {e}")
        return warnings


def options_of(cls: type) -> dict[str, str]:
    """The options a plugin class accepts with their defaults, for `ecgarena list`."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return {
            k: ("required" if f.is_required() else repr(f.default))
            for k, f in cls.model_fields.items()
            if k not in ("data_dir", "cache_dir")
        }
    return {}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@cache
def get_host() -> Host:
    """The process-wide host, loaded on first use."""
    return Host()
