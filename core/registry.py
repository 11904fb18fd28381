"""Which plugins there are: `registry.toml`, the catalogue of known plugins (validated with
pydantic), and the selection of installed ones by ECGARENA_PLUGINS / ECGARENA_DISABLE_PLUGINS."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError
from .specs import describe_validation_error

if TYPE_CHECKING:
    from .host import Host

ALLOW, BLOCK = "ECGARENA_PLUGINS", "ECGARENA_DISABLE_PLUGINS"

SOURCE_TREE = Path(__file__).resolve().parent.parent / "registry.toml"


def packaged_registry() -> Traversable:
    """The catalogue shipped as package data (a wheel), else the source tree's top-level file."""
    packaged = files("ecgarena") / "registry.toml"
    return packaged if packaged.is_file() else SOURCE_TREE


REGISTRY = packaged_registry()


def normalize(dist: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): `Ecgarena_SAP` → `ecgarena-sap`."""
    return re.sub(r"[-_.]+", "-", dist).lower()


@dataclass(frozen=True)
class Selection:
    """An ECGARENA_PLUGINS (allow) or ECGARENA_DISABLE_PLUGINS (block) value: comma-separated
    entry-point names, and `dist:NAME` for every entry point of distribution NAME."""

    names: frozenset[str]
    dists: frozenset[str]

    @classmethod
    def from_env(cls, env: str) -> Selection | None:
        """The selection in environment variable `env`; None when it is unset."""
        raw = os.environ.get(env)
        if raw is None:
            return None
        items = [i.strip() for i in raw.split(",") if i.strip()]
        dists = frozenset(normalize(i[5:]) for i in items if i.startswith("dist:"))
        return cls(frozenset(i for i in items if not i.startswith("dist:")), dists)

    def matches(self, ep: EntryPoint) -> bool:
        """Whether `ep` is named, or comes from a named distribution."""
        dist = distribution_of(ep)[0]
        return ep.name in self.names or (dist is not None and normalize(dist) in self.dists)


def distribution_of(ep: EntryPoint) -> tuple[str | None, str | None]:
    """The name and version of the distribution an entry point comes from (None: unknown)."""
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else (None, None)


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


def plugin_status(host: Host, path: Traversable = REGISTRY) -> list[dict]:
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
