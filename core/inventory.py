"""The inventory of what the installed plugins register, cached for `ecgarena plugins` and `ecgarena list` so they
answer without importing torch or any plugin. The cached inventory is trusted only while its fingerprint
matches: every selected entry point (name, target, distribution, version), the size and mtime
of every source file of its package and of the core, and the plugin-selection variables. Any
change, or a file that fails its digest, loads the plugins once and rewrites the cache."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .host import GROUP, KINDS, Host, PluginRecord, distribution_of, options_of
from .selection import ALLOW, BLOCK

FORMAT = 1  # bumped when the cached rows change shape


@dataclass
class Inventory:
    """Every plugin's record and, per kind, the rows `ecgarena list` shows."""

    plugins: dict[str, PluginRecord]
    entries: dict[str, list[dict[str, Any]]]


def of_host(host: Host) -> Inventory:
    """The inventory of a loaded host."""
    entries = {
        kind: [
            {
                "name": e.name,
                "plugin": e.plugin,
                **({"kind": e.cls.kind} if kind == "defenses" else {}),
                "options": options_of(e.cls),
                "doc": (e.cls.__doc__ or "").strip().splitlines()[0] if e.cls.__doc__ else "",
            }
            for e in (host.entries[kind][n] for n in host.names(kind))
        ]
        for kind in KINDS
    }
    return Inventory(dict(host.plugins), entries)


def _sources(top: str) -> list[str]:
    """`path size mtime` of every Python file of the top-level module or package `top`,
    found without importing it (an absent one: its name, so that installing it changes this)."""
    spec = find_spec(top)
    if spec is None:
        return [f"{top} absent"]
    roots = list(spec.submodule_search_locations or []) or [spec.origin or top]
    files = sorted(
        p for r in roots for p in ([Path(r)] if r.endswith(".py") else Path(r).rglob("*.py"))
    )
    return [f"{p} {s.st_size} {s.st_mtime_ns}" for p in files if (s := p.stat())]


def fingerprint() -> str:
    """A digest of everything the inventory depends on (read without importing a plugin)."""
    lines = [f"format {FORMAT}", *(f"{k}={os.environ.get(k)}" for k in (ALLOW, BLOCK))]
    lines += _sources("ecgarena")
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        lines.append(f"{ep.name} {ep.value} {distribution_of(ep)}")
        lines += _sources(ep.value.partition(":")[0].partition(".")[0])
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _read(path: Path, expected: str) -> Inventory | None:
    """The cached inventory when its fingerprint matches and its digest checks, else None."""
    try:
        stored = json.loads(path.read_text())
        body = stored["body"]
        if stored["fingerprint"] != expected or stored["sha256"] != _digest(body):
            return None
        plugins = {n: PluginRecord(**r) for n, r in body["plugins"].items()}
        return Inventory(plugins, body["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def inventory(home: Path) -> Inventory:
    """The plugins' inventory: from `home`'s cache when it still holds, else from the loaded
    host (`get_host`), cached for next time."""
    from .host import get_host

    path, expected = home / "cache" / "inventory.json", fingerprint()
    cached = _read(path, expected)
    if cached is not None:
        return cached
    fresh = of_host(get_host())
    body = {"plugins": {n: asdict(r) for n, r in fresh.plugins.items()}, "entries": fresh.entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"fingerprint": expected, "sha256": _digest(body), "body": body}))
    os.replace(tmp, path)
    return fresh


def host_for(home: Path, kind: str, name: str) -> Host:
    """A host able to create `name` of `kind`, loading no plugin when the inventory says the
    core itself registers it and no plugin claims the name too; else every plugin."""
    from .host import CORE, get_host

    inv = inventory(home)
    owner = next((e["plugin"] for e in inv.entries.get(kind, []) if e["name"] == name), None)
    contested = any(f"{name!r}" in err for r in inv.plugins.values() for err in r.errors)
    return Host(eps=[]) if owner == CORE and not contested else get_host()
