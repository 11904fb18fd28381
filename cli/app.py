"""The `ecgarena` command line: thin parsing on top of the core, rendering with rich. The
commands live in `cells`, `stored`, `report` and `inventory`; importing them registers them on `app`."""

from __future__ import annotations

from . import cells, inventory, report, stored  # noqa: F401 (registers the commands)
from .base import app
from .data import data_app
from .new import new_app

app.add_typer(data_app, name="data")
app.add_typer(new_app, name="new")


def main() -> None:
    """Console-script entry point."""
    app()
