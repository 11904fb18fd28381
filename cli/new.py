"""`ecgarena new plugin NAME --kind K`: write a ready plugin package (see `ecgarena.scaffold`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ecgarena.progress import console
from ecgarena.scaffold import KINDS, new_plugin

new_app = typer.Typer(no_args_is_help=True, help="Start new things: a plugin package.")


@new_app.command()
def plugin(
    name: Annotated[str, typer.Argument(help="the plugin's registered name, e.g. my-attack")],
    kind: Annotated[str, typer.Option(help=" | ".join(KINDS))] = "attack",
    dest: Annotated[Path, typer.Option(help="folder to create ecgarena-NAME in")] = Path("."),
) -> None:
    """Write ecgarena-NAME/: pyproject with the entry point, a working module, README, tests."""
    root = new_plugin(name, kind, dest)
    console.print(f"wrote {root}: pip install -e {root} && python -m pytest {root / 'tests'}")
