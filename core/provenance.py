"""What a stored cell stands for: the versions of the core, torch and plugins behind it, and
why a stored cell no longer matches its spec (then it is re-run, the old row kept)."""

from __future__ import annotations

from typing import Any

import torch

from .host import Host
from .specs import RunSpec


def plugin_versions(host: Host, pieces: list[tuple[str, str]]) -> dict[str, str | None]:
    """Core, torch and the versions of the plugins providing `(kind, name)` pieces."""
    out = {"ecgarena": host.plugins["ecgarena"].version, "torch": torch.__version__}
    for kind, name in pieces:
        plugin = host.get(kind, name).plugin
        out[plugin] = host.plugins[plugin].version
    return out


def versions(host: Host, spec: RunSpec) -> dict[str, str | None]:
    """Versions behind a cell (with the transfer source's plugins), stored with every result."""
    src = spec.source()
    pieces = [("datasets", spec.dataset), ("models", spec.model), ("defenses", spec.defense)]
    pieces += [("attacks", spec.attack), ("models", src.model), ("defenses", src.defense)]
    if spec.eval_dataset:
        pieces.append(("datasets", spec.eval_dataset))
    return plugin_versions(host, pieces)


def stale_because(stored: dict[str, Any], data_key: str, now: dict[str, Any]) -> str | None:
    """Why a stored cell no longer stands for its spec (None: reuse it): its data changed, or
    a plugin, the core or torch behind it has another version now."""
    if stored.get("data_key") not in (None, data_key):
        return "the data changed"
    then = stored.get("versions") or {}
    moved = [f"{k} {then[k]} → {v}" for k, v in now.items() if k in then and then[k] != v]
    return f"versions changed ({', '.join(moved)})" if moved else None
