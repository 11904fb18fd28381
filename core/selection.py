"""Which installed plugins load: ECGARENA_PLUGINS (allow) and ECGARENA_DISABLE_PLUGINS (block)
name entry points, or whole distributions with `dist:NAME`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint

ALLOW, BLOCK = "ECGARENA_PLUGINS", "ECGARENA_DISABLE_PLUGINS"


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
