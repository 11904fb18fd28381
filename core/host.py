"""The pluggy host: finds plugins through the `ecgarena` entry-point group, calls their hooks
through pluggy and collects what they register, attributing every name to its plugin, checking
every class against the protocols, and never letting one broken plugin hide the others."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version
from types import ModuleType
from typing import Any, Literal

import pluggy
from pydantic import BaseModel, ValidationError

from . import hookspecs
from .errors import PluginError, UserError
from .selection import ALLOW, BLOCK, Selection, distribution_of
from .specs import describe_validation_error

Kind = Literal["datasets", "models", "attacks", "defenses"]
KINDS: tuple[Kind, ...] = ("datasets", "models", "attacks", "defenses")
GROUP = "ecgarena"
CORE = "ecgarena"
HOOKS = tuple(n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), f"{GROUP}_spec"))
NOT_YIELDED = object()


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


def _one_line(e: Exception) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


class _Guarded:
    """What the host registers with pluggy for a plugin: its hook implementations, guarded."""


class Host:
    """Loads plugins once and answers `get(kind, name)` / `create(kind, name, options)`."""

    def __init__(self, eps: Iterable[EntryPoint] | None = None, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.entries: dict[Kind, dict[str, Entry]] = {k: {} for k in KINDS}
        self.refused: dict[Kind, dict[str, str]] = {k: {} for k in KINDS}
        self.clashes: dict[tuple[Kind, str], str] = {}
        self._acting: list[str] = []
        self._failures: list[tuple[str, Exception]] = []
        batch: list[tuple[object, PluginRecord]] = []
        if builtins:
            from . import builtins as core_builtins

            core = self.plugins[CORE] = PluginRecord(CORE, "ecgarena", _version("ecgarena"))
            batch.append((core_builtins, core))
        batch += self._discover(entry_points(group=GROUP) if eps is None else eps)
        self._load(batch)

    def _discover(self, eps: Iterable[EntryPoint]) -> list[tuple[object, PluginRecord]]:
        """Import the selected entry points; a name two distributions claim loads neither."""
        allow, block = Selection.from_env(ALLOW), Selection.from_env(BLOCK)
        claims: dict[str, dict[tuple[str | None, str], EntryPoint]] = {}
        for ep in eps:
            if (allow is None or allow.matches(ep)) and not (block and block.matches(ep)):
                claims.setdefault(ep.name, {}).setdefault((distribution_of(ep)[0], ep.value), ep)
        loaded = []
        for name, claimants in claims.items():
            first = next(iter(claimants.values()))
            record = self.plugins[name] = PluginRecord(name, *distribution_of(first))
            if len(claimants) > 1:
                who = sorted(f"{d or '?'} ({v})" for d, v in claimants)
                record.distribution = ", ".join(sorted(d or "?" for d, _ in claimants))
                record.errors.append(
                    f"entry point {name!r} is claimed by {' and '.join(who)}: neither is "
                    f"loaded; uninstall one, or choose one with {ALLOW}=dist:<distribution>"
                )
                continue
            try:
                loaded.append((first.load(), record))
            except Exception as e:  # a broken plugin is reported, never fatal
                record.errors.append(f"import failed: {_one_line(e)}")
        return loaded

    def add(
        self,
        plugin: ModuleType | object,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Register one more plugin object and collect its registrations (used by tests)."""
        self._load([(plugin, PluginRecord(name, distribution, version))])
        return self.plugins[name]

    def _load(self, batch: list[tuple[object, PluginRecord]]) -> None:
        """Register a batch with pluggy, then call each register hook once on the batch."""
        from . import capabilities  # torch: imported when plugins load, not for `--help`

        earlier = self.pm.get_plugins()
        for plugin, new in batch:
            record = self.plugins.setdefault(new.name, new)
            try:
                self.pm.register(self._guard(plugin, record), name=record.name)
            except Exception as e:
                record.errors.append(f"register failed: {_one_line(e)}")
                continue
            for cls in capabilities.classifier_classes(_package(plugin)):
                record.errors += [
                    f"plugin {record.name!r}: {p}" for p in capabilities.problems("classifier", cls)
                ]
        for kind in KINDS:
            hook = f"ecgarena_register_{kind}"
            for plugin, e in self._call(hook, earlier, register=self._register(kind)):
                self.plugins[plugin].errors.append(f"{hook} failed: {_one_line(e)}")

    def _guard(self, plugin: object, record: PluginRecord) -> _Guarded:
        """The plugin's hook implementations, each run as its plugin with its exception kept;
        those the host cannot call are refused (see `capabilities.hookimpl_problem`)."""
        from . import capabilities  # (see _load)

        guarded = _Guarded()
        for attr in dir(plugin):
            opts, function = self.pm.parse_hookimpl_opts(plugin, attr), getattr(plugin, attr, None)
            problem = capabilities.hookimpl_problem(attr, opts, function, HOOKS)
            if problem is not None:
                record.errors.append(f"plugin {record.name!r}: {problem}")
            elif opts is not None:
                setattr(guarded, attr, self._guarded(function, record.name, opts))
        return guarded

    def _guarded(
        self, function: Callable[..., Any], plugin: str, opts: dict[str, Any]
    ) -> Callable[..., Any]:
        """`function` run as `plugin`; a new-style wrapper stays a generator around the rest."""
        if not opts.get("wrapper"):

            @functools.wraps(function)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                with self._running(plugin):
                    return function(*args, **kwargs)

            return guarded

        @functools.wraps(function)
        def guarded_wrapper(*args: Any, **kwargs: Any) -> Generator[None, Any, Any]:
            steps, started = function(*args, **kwargs), False
            with self._running(plugin):
                if next(steps, NOT_YIELDED) is NOT_YIELDED:
                    raise PluginError("wrapper=True implementation did not yield")
                started = True
            outcome = yield
            if started:
                with self._running(plugin):
                    try:
                        steps.send(outcome)
                    except StopIteration:
                        return outcome
                    raise PluginError("wrapper=True implementation yielded twice")
            return outcome

        return guarded_wrapper

    @contextmanager
    def _running(self, plugin: str) -> Iterator[None]:
        """Attribute registrations to `plugin` while its code runs; keep its exception."""
        self._acting.append(plugin)
        try:
            yield
        except Exception as e:
            self._failures.append((plugin, e))
        finally:
            self._acting.pop()

    def _call(
        self, hook: str, skip: Iterable[object], **kwargs: Any
    ) -> list[tuple[str, Exception]]:
        """Call `hook` through pluggy on every plugin but `skip`; the failures, per plugin."""
        self._failures = failures = []
        self.pm.subset_hook_caller(hook, skip)(**kwargs)
        return failures

    def _register(self, kind: Kind) -> Callable[[type], None]:
        def register(cls: type) -> None:
            """Register `cls` for the plugin whose hook is running."""
            if not self._acting:
                raise PluginError(f"register({cls!r}) called outside an ecgarena hook")
            self._accept(kind, cls, self.plugins[self._acting[-1]])

        return register

    def _accept(self, kind: Kind, cls: type, record: PluginRecord) -> None:
        """Enter `cls` under its name unless it breaks the protocol or the name is taken."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            record.errors.append(f"plugin {record.name!r}: {cls!r} has no string `name`")
            return
        from . import capabilities  # (see _load)

        wrong = [f"plugin {record.name!r}: {p}" for p in capabilities.problems(kind, cls)]
        if wrong:
            record.errors += wrong
            self.refused[kind].setdefault(name, wrong[0])
            return
        known = self.entries[kind].get(name)
        if known is not None:
            msg = (
                f"{kind[:-1]} name {name!r} is registered by both plugin {known.plugin!r} "
                f"and plugin {record.name!r}"
            )
            self.clashes[kind, name] = msg
            record.errors.append(msg)
            return
        self.entries[kind][name] = Entry(name, kind, cls, record.name)
        record.registers.setdefault(kind, []).append(name)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: Kind, name: str) -> Entry:
        """Look a name up; unknown, refused and clashing names are one-line errors."""
        if (kind, name) in self.clashes:
            raise PluginError(f"{self.clashes[kind, name]}; uninstall or disable one ({BLOCK})")
        if name in self.entries[kind]:
            return self.entries[kind][name]
        if name in self.refused[kind]:
            raise PluginError(f"{self.refused[kind][name]} (so it is not registered)")
        valid = self.names(kind)
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        broken = [f"{r.name}: {r.errors[0][:160]}" for r in self.plugins.values() if r.errors]
        hint += f"; plugins with errors (`ecgarena plugins`): {'; '.join(broken)}" if broken else ""
        raise PluginError(
            f"unknown {kind[:-1]} {name!r} (available: {', '.join(valid) or 'none'}){hint}"
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
        failures = self._call("ecgarena_result", (), result=result)
        return [f"result observer {plugin!r} failed: {_one_line(e)}" for plugin, e in failures]


def _package(plugin: object) -> str:
    """The package a plugin object's code lives in (its Classifier subclasses are checked)."""
    if isinstance(plugin, ModuleType):
        name = plugin.__name__
        return name if hasattr(plugin, "__path__") else name.rpartition(".")[0] or name
    return type(plugin).__module__


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
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


@functools.cache
def get_host() -> Host:
    """The process-wide host, loaded on first use."""
    return Host()
