"""Parsing of CLI values: comma lists, KEY=VALUE options, budgets; one-line errors."""

from __future__ import annotations

import tomllib
from typing import Any

from ecgarena.errors import UserError


def comma_list(value: str | None) -> list[str] | None:
    """`"a, b,c"` → `["a", "b", "c"]`; commas inside brackets do not split (`[0.1, 0.2],50uV`)."""
    if value is None:
        return None
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(value + ","):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth <= 0:
            parts.append(value[start:i].strip())
            start = i + 1
    return [p for p in parts if p]


def budget_list(value: str | None) -> list[Any] | None:
    """A matrix's `--eps`: budgets and per-lead lists, e.g. `0.05,50uV,[0.1, 0.1, 0.2]`."""
    items = comma_list(value)
    return None if items is None else [budget(item) for item in items]


def key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """`["steps=20", "norm=l2"]` → `{"steps": 20, "norm": "l2"}` (values read as TOML, else text)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {pair!r} is not KEY=VALUE (e.g. {flag} steps=20)")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw.strip()
    return out


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != {}}


def budget(value: str | None) -> str | list[Any] | None:
    """`--eps 0.05mV` stays text; `--eps "[0.1, 0.2, ...]"` is a per-lead list (TOML syntax)."""
    if value is None or not value.strip().startswith("["):
        return value
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        raise UserError(
            f'--eps {value!r} is not a per-lead list; write e.g. --eps "[0.1, 0.1, 0.2]"'
        ) from None
    return parsed
