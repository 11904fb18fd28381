"""`ecgarena plugins` and `ecgarena list`: what is installed and registered."""

from __future__ import annotations

from typing import Annotated

import typer
from ecgarena import paths
from ecgarena.errors import UserError
from ecgarena.host import KINDS
from ecgarena.inventory import inventory
from ecgarena.registry import plugin_status

from . import render
from .base import Home, Json, app


@app.command()
def plugins(home: Home = None, json_out: Json = False) -> None:
    """Installed plugins: version, what each registers, load errors, registry status."""
    rows = plugin_status(inventory(paths.home(home)).plugins)
    if json_out:
        render.print_json(rows)
        return
    from rich.table import Table

    table = Table(title="ecgarena plugins")
    for c in ("plugin", "distribution", "version", "registers", "registry", "errors"):
        table.add_column(c)
    for r in rows:
        regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registers"].items())
        table.add_row(
            r["name"],
            r["distribution"] or "-",
            r["version"] or "-",
            regs or "-",
            r["registry"],
            "\n".join(r["errors"]) or "-",
        )
    render.show(table)


@app.command("list")
def list_(
    kind: Annotated[str, typer.Argument(help="attacks | defenses | models | datasets")],
    home: Home = None,
    json_out: Json = False,
) -> None:
    """What is registered of one kind, with its plugin and options."""
    if kind not in KINDS:
        raise UserError(f"unknown kind {kind!r} (valid: {', '.join(KINDS)})")
    rows = inventory(paths.home(home)).entries[kind]
    if json_out:
        render.print_json(rows)
        return
    from rich.table import Table

    table = Table(title=kind)
    extra = ["kind"] if kind == "defenses" else []
    for c in ("name", "plugin", *extra, "options", "description"):
        table.add_column(c)
    for r in rows:
        options = ", ".join(f"{k}={v}" for k, v in r["options"].items())
        table.add_row(r["name"], r["plugin"], *(r[c] for c in extra), options, r["doc"])
    render.show(table)
