"""`ecgarena data info|download`: what a data folder holds, and fetching PhysioNet releases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ecgarena import paths
from ecgarena.download import SOURCES, download
from ecgarena.inventory import host_for
from ecgarena.progress import progress
from rich.table import Table

from . import render
from .options import key_values

data_app = typer.Typer(no_args_is_help=True, help="Inspect and fetch datasets.")


@data_app.command()
def info(
    name: Annotated[str, typer.Argument(help="dataset name, e.g. ptbxl, mitdb, synthetic")],
    data_dir: Annotated[
        Path | None, typer.Option(help="dataset folder (or $ECGARENA_DATA)")
    ] = None,
    opt: Annotated[list[str] | None, typer.Option(help="KEY=VALUE dataset option")] = None,
    home: Annotated[Path | None, typer.Option(help="state folder (cache)")] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="print one JSON object on stdout")
    ] = False,
) -> None:
    """Decode (or read from cache) a dataset and print what was found."""
    options = {
        **key_values(opt, "--opt"),
        "data_dir": data_dir,
        "cache_dir": paths.home(home) / "cache",
    }
    dataset = host_for(paths.home(home), "datasets", name).create("datasets", name, options)
    described = dataset.describe()
    notes = list(getattr(dataset, "notes", []))
    if json_out:
        render.print_json({**described, **({"notes": notes} if notes else {})})
        return
    table = Table(title=f"dataset {name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in described.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) if len(value) <= 20 else f"{len(value)} items"
        table.add_row(key, str(value))
    render.show(table)
    for note in notes:
        render.show(f"note: {note}")


@data_app.command("download")
def download_(
    name: Annotated[str, typer.Argument(help=f"one of {', '.join(SOURCES)}")],
    dest: Annotated[Path, typer.Option(help="folder to download into")],
    base_url: Annotated[str | None, typer.Option(help="mirror URL instead of PhysioNet")] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="parallel downloads")] = 4,
) -> None:
    """Fetch a PhysioNet release, verify SHA256SUMS, resume interrupted files."""
    with progress() as bar:
        task = bar.add_task(f"download {name}", total=None, info="")
        report = download(
            name,
            dest,
            base_url=base_url,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    render.show(
        f"{name}: {report.files_total} files in {dest} — {report.files_downloaded} downloaded "
        f"({report.bytes_downloaded / 1e6:.1f} MB), {report.files_skipped} already present and verified"
    )
    for note in report.notes:
        render.show(f"note: {note}")
