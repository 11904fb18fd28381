"""Physical units of budgets: every budget is parsed to millivolts here and nowhere else."""

from __future__ import annotations

import math
import re

_UNITS = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
_PATTERN = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Zµμ]*)\s*$")
MAX_BUDGET_MV = 50.0  # far above any ECG amplitude: a larger budget is a unit mistake


def parse_mv(value: str | float | int) -> float:
    """Parse `0.05`, `0.05mV`, `50uV` or `50µV` into millivolts (a bare number is mV)."""
    if isinstance(value, bool):
        raise ValueError(f"budget {value!r} is not a number; use e.g. 0.05mV or 50uV")
    if isinstance(value, (int, float)):
        mv = float(value)
    else:
        match = _PATTERN.match(value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS and unit != "":
            raise ValueError(
                f"budget {value!r} is not a voltage; use a number in mV or a unit mV/uV/µV "
                "(e.g. 0.05mV or 50uV)"
            )
        mv = float(match.group(1)) * (_UNITS[unit] if unit else 1.0)
    if not math.isfinite(mv) or mv < 0:
        raise ValueError(f"budget {value!r} must be a finite voltage ≥ 0 mV")
    if mv > MAX_BUDGET_MV:
        raise ValueError(
            f"budget {value!r} = {mv:g} mV is absurd for ECG (> {MAX_BUDGET_MV:g} mV); "
            "did you mean µV (e.g. 50uV)?"
        )
    return mv


def format_mv(mv: float) -> str:
    """Render a budget for people: µV below 0.1 mV, mV above."""
    return f"{mv * 1e3:g}µV" if 0 < mv < 0.1 else f"{mv:g}mV"
