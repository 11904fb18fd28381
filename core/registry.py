"""`registry.toml`: the catalogue of known plugins, validated with pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError
from .host import Host
from .specs import describe_validation_error

REGISTRY = Path(__file__).resolve().parent.parent / "registry.toml"


class RegistryEntry(BaseModel):
    """One known plugin distribution."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="entry-point name in the `ecgarena` group")
    distribution: str
    kinds: list[Literal["datasets", "models", "attacks", "defenses"]] = Field(min_length=1)
    provides: list[str] = Field(min_length=1)
    paper: str
    status: Literal["available", "planned"]
    path: str | None = Field(None, description="first-party source folder under plugins/")


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plugin: list[RegistryEntry]


def load_registry(path: Path = REGISTRY) -> Registry | None:
    """The registry if the source tree ships one (absent in a wheel-only install)."""
    if not path.exists():
        return None
    try:
        return Registry.model_validate(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, ValidationError) as e:
        detail = (
            describe_validation_error("registry", e) if isinstance(e, ValidationError) else str(e)
        )
        raise UserError(f"{path}: {detail}") from None


def plugin_status(host: Host, path: Path = REGISTRY) -> list[dict]:
    """Installed plugins with registry status, then registry entries not installed."""
    registry = load_registry(path)
    known = {e.name: e for e in registry.plugin} if registry else {}
    rows = []
    for name, rec in host.plugins.items():
        status = "core" if name == "ecgarena" else ("known" if name in known else "unknown")
        rows.append(
            {
                "name": name,
                "distribution": rec.distribution,
                "version": rec.version,
                "registers": rec.registers,
                "errors": rec.errors,
                "registry": status,
            }
        )
    for name, entry in known.items():
        if name not in host.plugins:
            rows.append(
                {
                    "name": name,
                    "distribution": entry.distribution,
                    "version": None,
                    "registers": {k: entry.provides for k in entry.kinds[:1]},
                    "errors": [],
                    "registry": f"{entry.status}, not installed",
                }
            )
    return rows
