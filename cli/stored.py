"""`ecgarena results` and `ecgarena plot`: views and figures of stored results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from ecgarena.errors import UserError
from ecgarena.progress import console
from ecgarena.tables import export, select
from ecgarena.units import parse_mv

from . import render
from .base import Home, SourceModel, app, store_of
from .options import comma_list


def mv_list(value: str | None, flag: str) -> list[float] | None:
    """A comma list of budgets (`0.1`, `0.1mV`, `100uV`) in mV, or None when not given."""
    if not value:
        return None
    try:
        return [parse_mv(v) for v in comma_list(value) or []]
    except ValueError as e:
        raise UserError(f"{flag}: {e}") from None


@app.command()
def results(
    format: Annotated[str, typer.Option(help="table | csv | json | md")] = "table",
    all_rows: Annotated[
        bool, typer.Option("--all", help="every stored row, not only the newest per cell")
    ] = False,
    pivot: Annotated[
        bool, typer.Option("--pivot", help="defenses × clean/attacked F1 and AUC, mean ± std")
    ] = False,
    robust: Annotated[
        bool,
        typer.Option("--robust", help="ACC_robust / F1_robust over each attack's ε grid"),
    ] = False,
    attack: Annotated[str | None, typer.Option(help="only this attack")] = None,
    dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
    include_violations: Annotated[
        bool,
        typer.Option(
            "--include-violations",
            help="aggregate cells that violated their threat model too (left out by default)",
        ),
    ] = False,
    grid: Annotated[
        str | None,
        typer.Option(help="--robust: compute every curve on these budgets, e.g. 0.02,0.05,0.1"),
    ] = None,
    eps_max: Annotated[
        str | None,
        typer.Option(
            "--eps-max",
            help="--robust: also report ACC/F1_robust over the grid truncated at these budgets "
            "(each on the grid), e.g. 0.1 next to the full grid",
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Stored results, newest per cell, as a table or an export; --pivot and --robust
    aggregate seeds (without cells that violated their threat model)."""
    formats = ("table", "csv", "json", "md")
    if format not in formats:
        raise UserError(f"unknown format {format!r} (valid: {', '.join(formats)})")
    stored = store_of(home).results(all_rows)
    rows = select(stored, attack=attack, dataset=dataset)
    if pivot or robust:
        from ecgarena.views import PIVOT_COLUMNS, robust_columns  # scipy: only to aggregate
        from ecgarena.views import pivot as view_pivot
        from ecgarena.views import robust as view_robust

        grid_mv = mv_list(grid, "--grid")
        cut_mv = mv_list(eps_max, "--eps-max")
        view = (
            view_robust(rows, include_violations, grid_mv, cut_mv)
            if robust
            else view_pivot(rows, include_violations)
        )
        if not view.rows:
            need = "a matrix over several budgets" if robust else "a matrix"
            raise UserError(f"no finished results to aggregate (run {need} first)")
        if format == "json":
            render.print_json({"rows": view.rows, "left_out_violations": view.left_out})
        else:
            columns = robust_columns(cut_mv) if robust else PIVOT_COLUMNS
            title = (
                "ACC_robust = sqrt(clean · normalised area under the ε curve)"
                if robust
                else "clean vs attacked: mean ± std over seeds, [95% CI] for one seed"
            )
            render.pivot_table(view.rows, columns, title, markdown=format == "md")
            if view.note():
                render.show(f"[yellow]{view.note()}[/yellow]")
        return
    if format == "table":
        render.results_table(rows, title=f"{len(rows)} stored results")
    else:
        print(export(rows, format), end="")


@app.command()
def plot(
    kind: Annotated[str, typer.Argument(help="overlay | psd | targets | sweep")],
    dataset: Annotated[str | None, typer.Option(help="only results on this dataset")] = None,
    model: Annotated[str | None, typer.Option(help="only results on this (target) model")] = None,
    defense: Annotated[str | None, typer.Option(help="only results with this defense")] = None,
    attack: Annotated[
        str | None, typer.Option(help="only this attack (comma list for sweep)")
    ] = None,
    source_model: SourceModel = None,
    seed: Annotated[int | None, typer.Option(help="only this seed")] = None,
    record: Annotated[int, typer.Option(help="overlay: which stored record (0-3)")] = 0,
    out: Annotated[Path | None, typer.Option(help="PNG path (default ecgarena-KIND.png)")] = None,
    home: Home = None,
) -> None:
    """Draw a PNG from stored results: the newest matching cell (a sweep uses all of them)."""
    from . import plots

    if kind not in plots.KINDS:
        raise UserError(f"unknown plot {kind!r} (valid: {', '.join(plots.KINDS)})")
    wanted = {"dataset": dataset, "model": model, "defense": defense, "seed": seed}
    wanted |= {"attack": comma_list(attack), "source_model": source_model}
    rows = select([r for r in store_of(home).results() if r.status == "done"], **wanted)
    if not rows:
        shown = {k: v for k, v in wanted.items() if v is not None}
        raise UserError(f"no stored result matches {shown or 'anything'}; run a cell first")
    target = out or Path(f"ecgarena-{kind}.png")
    if kind == "sweep":
        fig = plots.sweep(rows)
    elif kind == "overlay":
        fig = plots.overlay(rows[-1], record)
    else:
        fig = getattr(plots, kind)(rows[-1])
    console.print(f"wrote {plots.save(fig, target)}")
