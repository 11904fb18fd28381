"""`registry.toml`, the catalogue of known plugins (validated with pydantic), shipped as package
data, and the status of every installed or known plugin for `ecgarena plugins`."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError
from .host import PluginRecord
from .specs import describe_validation_error

SOURCE_TREE = Path(__file__).resolve().parent.parent / "registry.toml"


def packaged_registry() -> Traversable:
    """The catalogue shipped as package data (a wheel), else the source tree's top-level file."""
    packaged = files("ecgarena") / "registry.toml"
    return packaged if packaged.is_file() else SOURCE_TREE


REGISTRY = packaged_registry()


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


def load_registry(path: Traversable = REGISTRY) -> Registry | None:
    """The registry, or None when neither the package nor the source tree ships one."""
    if not path.is_file():
        return None
    try:
        return Registry.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, ValidationError) as e:
        detail = (
            describe_validation_error("registry", e) if isinstance(e, ValidationError) else str(e)
        )
        raise UserError(f"{path}: {detail}") from None


def plugin_status(plugins: dict[str, PluginRecord], path: Traversable = REGISTRY) -> list[dict]:
    """Installed plugins (their records, by name) with registry status, then registry entries
    not installed."""
    registry = load_registry(path)
    known = {e.name: e for e in registry.plugin} if registry else {}
    rows = []
    for name, rec in plugins.items():
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
        if name not in plugins:
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
