"""`Options`: the base class of every plugin's pydantic options (attacks, defenses, models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """A plugin's options, validated by the host: an unknown option is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")
