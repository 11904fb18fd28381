"""The `ecgarena` command line: thin parsing on top of the core, rendering with rich."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from ecgarena import matrix as grid
from ecgarena import paths
from ecgarena.errors import UserError
from ecgarena.host import KINDS, get_host, options_of
from ecgarena.progress import console, progress
from ecgarena.registry import plugin_status
from ecgarena.resources import Resources
from ecgarena.result import CellResult
from ecgarena.specs import MatrixSpec, RunSpec, read_toml, validate
from ecgarena.store import Store
from ecgarena.tables import export, select
from ecgarena.units import parse_mv
from ecgarena.views import PIVOT_COLUMNS, robust_columns
from ecgarena.views import pivot as view_pivot
from ecgarena.views import robust as view_robust
from rich.text import Text
from typer.core import TyperGroup

from . import render
from .data import data_app
from .options import budget, budget_list, comma_list, drop_none, key_values


def one_line_error(message: str) -> None:
    """The CLI's only error form: one red line on stderr."""
    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


class ArenaGroup(TyperGroup):
    """Turns user errors and bad flags into one red line and exit code 2, never a traceback
    or a usage box."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as e:
            one_line_error(str(e))
            raise typer.Exit(2) from None

    def main(self, *args: Any, standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's parsing errors (`--seed abc`, an unknown flag) as one line, exit 2; no
        arguments shows the help. (Typer vendors click in newer versions: matched by shape.)"""
        try:
            code = super().main(*args, standalone_mode=False, **extra)
        except typer.Abort:
            code = 1
        except Exception as e:
            if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):
                raise
            if type(e).__name__ == "NoArgsIsHelpError":
                e.show()
            else:
                path = e.ctx.command_path if getattr(e, "ctx", None) else "ecgarena"
                one_line_error(f"{e.format_message()} (see `{path} --help`)")
            code = e.exit_code
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=ArenaGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="ecgarena: adversarial robustness of ECG classifiers, attack × defense, in mV.",
)
app.add_typer(data_app, name="data")

Home = Annotated[
    Path | None, typer.Option(help="state folder (default $ECGARENA_HOME or ./.ecgarena)")
]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
Device = Annotated[str | None, typer.Option(help="cpu | cuda | auto")]
DataDir = Annotated[Path | None, typer.Option(help="dataset folder (or $ECGARENA_DATA)")]
Config = Annotated[Path | None, typer.Option(help="TOML file with the same fields")]
Epochs = Annotated[int | None, typer.Option(help="training epochs (early stopping may end sooner)")]
MaxRecords = Annotated[
    int | None, typer.Option(help="attack at most N test records (seeded sample)")
]
Opts = Annotated[list[str] | None, typer.Option(help="KEY=VALUE plugin option, repeatable")]
SourceModel = Annotated[
    str | None, typer.Option(help="transfer: craft the attack on this model, evaluate on --model")
]
SourceDefense = Annotated[
    str | None, typer.Option(help="transfer: the source model's defense (default: --defense)")
]
EvalDataset = Annotated[
    str | None,
    typer.Option(help="zero-shot: train on --dataset, evaluate on all records of this dataset"),
]
EvalDataDir = Annotated[Path | None, typer.Option(help="folder of --eval-dataset")]
Isolate = Annotated[
    bool,
    typer.Option(
        "--isolate",
        help="run each attack in a separate process that returns δ only (this process keeps "
        "the reference weights, audits and evaluates)",
    ),
]
VIOLATION_EXIT = 3  # a stored cell broke its threat model (1: a cell failed; 2: bad input)


def exit_code(results: list[CellResult]) -> int:
    """3 when any cell violates its threat model, else 1 when any failed, else 0."""
    if not all(r.passed for r in results):
        return VIOLATION_EXIT
    return 1 if any(r.status == "failed" for r in results) else 0


def store_of(home: Path | None) -> Store:
    """The results store of the home folder (`--home`, $ECGARENA_HOME or ./.ecgarena)."""
    return Store(paths.home(home) / "results.sqlite")


def _train(config: dict[str, Any], epochs: int | None) -> dict[str, Any]:
    return {**config.get("train", {}), **drop_none({"epochs": epochs})}


@app.command()
def run(
    dataset: Annotated[str | None, typer.Option(help="dataset plugin (default synthetic)")] = None,
    model: Annotated[str | None, typer.Option(help="model plugin (default cnn)")] = None,
    defense: Annotated[str | None, typer.Option(help="defense plugin (default none)")] = None,
    attack: Annotated[str | None, typer.Option(help="attack plugin (default pgd)")] = None,
    eps: Annotated[
        str | None,
        typer.Option(
            help='budget: 0.05, 0.05mV, 50uV or per lead "[0.1, ..., 0.2]" (default: the attack\'s)'
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of training and attack (default 0)")
    ] = None,
    device: Device = None,
    data_dir: DataDir = None,
    config: Config = None,
    epochs: Epochs = None,
    max_records: MaxRecords = None,
    dataset_opt: Opts = None,
    model_opt: Opts = None,
    defense_opt: Opts = None,
    attack_opt: Opts = None,
    source_model: SourceModel = None,
    source_model_opt: Opts = None,
    source_defense: SourceDefense = None,
    source_defense_opt: Opts = None,
    eval_dataset: EvalDataset = None,
    eval_data_dir: EvalDataDir = None,
    eval_dataset_opt: Opts = None,
    force: Annotated[bool, typer.Option(help="re-run even if this cell is stored")] = False,
    isolate: Isolate = False,
    home: Home = None,
    json_out: Json = False,
) -> None:
    """Run one cell: train (or reuse) the defended model, attack it, audit, store, report.

    Exit code 3 when the cell violates its threat model (CI can gate on it)."""
    base = read_toml(config) if config else {}
    flags = drop_none(
        {
            "dataset": dataset,
            "model": model,
            "defense": defense,
            "attack": attack,
            "eps": budget(eps),
            "seed": seed,
            "device": device,
            "data_dir": data_dir,
            "max_attack_records": max_records,
            "dataset_params": key_values(dataset_opt, "--dataset-opt"),
            "model_params": key_values(model_opt, "--model-opt"),
            "defense_params": key_values(defense_opt, "--defense-opt"),
            "attack_params": key_values(attack_opt, "--attack-opt"),
            "source_model": source_model,
            "source_model_params": key_values(source_model_opt, "--source-model-opt"),
            "source_defense": source_defense,
            "source_defense_params": key_values(source_defense_opt, "--source-defense-opt"),
            "eval_dataset": eval_dataset,
            "eval_data_dir": eval_data_dir,
            "eval_dataset_params": key_values(eval_dataset_opt, "--eval-dataset-opt"),
        }
    )
    spec: RunSpec = validate(RunSpec, {**base, **flags, "train": _train(base, epochs)}, "run spec")
    res = Resources(get_host(), paths.home(home), isolate)
    result = grid.run_and_store(res, store_of(home), spec, force=force)
    if json_out:
        render.print_json(result.row())
    else:
        render.run_result(result)
    if exit_code([result]):
        raise typer.Exit(exit_code([result]))


@app.command()
def matrix(
    datasets: Annotated[str | None, typer.Option(help="comma list (default synthetic)")] = None,
    models: Annotated[str | None, typer.Option(help="comma list (default cnn)")] = None,
    defenses: Annotated[str | None, typer.Option(help="comma list (default none)")] = None,
    attacks: Annotated[str | None, typer.Option(help="comma list (default pgd)")] = None,
    eps: Annotated[
        str | None,
        typer.Option(help='comma list of budgets, e.g. 0.02,50uV or a per-lead "[0.1, ..., 0.2]"'),
    ] = None,
    seeds: Annotated[str | None, typer.Option(help="comma list of seeds")] = None,
    device: Device = None,
    data_dir: DataDir = None,
    config: Config = None,
    epochs: Epochs = None,
    max_records: MaxRecords = None,
    source_model: SourceModel = None,
    source_defense: SourceDefense = None,
    eval_dataset: EvalDataset = None,
    eval_data_dir: EvalDataDir = None,
    data_dirs: Annotated[
        list[str] | None, typer.Option(help="DATASET=PATH folder of one dataset, repeatable")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="PLUGIN.KEY=VALUE option, repeatable")
    ] = None,
    force: Annotated[bool, typer.Option(help="re-run cells already stored")] = False,
    isolate: Isolate = False,
    home: Home = None,
    json_out: Json = False,
) -> None:
    """Run datasets × models × defenses × attacks × budgets × seeds; resume skips stored cells.

    Exit code 3 when any cell violates its threat model, 1 when any cell failed."""
    base = read_toml(config) if config else {}
    flags = drop_none(
        {
            "datasets": comma_list(datasets),
            "models": comma_list(models),
            "defenses": comma_list(defenses),
            "attacks": comma_list(attacks),
            "eps": budget_list(eps),
            "seeds": comma_list(seeds),
            "device": device,
            "data_dir": data_dir,
            "max_attack_records": max_records,
            "source_model": source_model,
            "source_defense": source_defense,
            "eval_dataset": eval_dataset,
            "eval_data_dir": eval_data_dir,
        }
    )
    params = base.get("params", {})
    for key, value in key_values(param, "--param").items():
        plugin, dot, option = key.rpartition(".")
        if not dot or not plugin:
            raise UserError(f"--param {key!r} must be PLUGIN.KEY=VALUE (e.g. --param pgd.steps=20)")
        sets = params.setdefault(plugin, {})
        for options in sets if isinstance(sets, list) else [sets]:  # every option set
            options[option] = value
    flags["params"] = params
    flags["data_dirs"] = {**base.get("data_dirs", {}), **key_values(data_dirs, "--data-dirs")}
    spec: MatrixSpec = validate(
        MatrixSpec, {**base, **flags, "train": _train(base, epochs)}, "matrix spec"
    )
    res = Resources(get_host(), paths.home(home), isolate)
    work = grid.plan(spec, res)  # every name and option checked before anything trains
    with progress() as bar:
        task = bar.add_task("matrix", total=len(work.cells), info="")

        def on_cell(cell: grid.CellTask, done: CellResult | None) -> None:
            c = cell.spec
            if done is None:
                bar.update(task, info=f"{c.defense}/{c.attack} ε={render.eps_text(c.eps)}")
            else:
                bar.advance(task)

        results = grid.run_local(work, res, store_of(home), force=force, on_cell=on_cell)
    if json_out:
        # tracebacks of failed cells stay in the store: the output names the error in one line
        render.print_json(
            {"cells": [r.model_dump(mode="json", exclude={"traceback"}) for r in results]}
        )
    else:
        render.results_table(results, title=f"matrix: {len(results)} cells")
    if exit_code(results):
        raise typer.Exit(exit_code(results))


@app.command()
def plugins(json_out: Json = False) -> None:
    """Installed plugins: version, what each registers, load errors, registry status."""
    rows = plugin_status(get_host())
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
    json_out: Json = False,
) -> None:
    """What is registered of one kind, with its plugin and options."""
    if kind not in KINDS:
        raise UserError(f"unknown kind {kind!r} (valid: {', '.join(KINDS)})")
    host = get_host()
    rows = [
        {
            "name": e.name,
            "plugin": e.plugin,
            "options": options_of(e.cls),
            "doc": (e.cls.__doc__ or "").strip().splitlines()[0] if e.cls.__doc__ else "",
        }
        for e in (host.entries[kind][n] for n in host.names(kind))
    ]
    if json_out:
        render.print_json(rows)
        return
    from rich.table import Table

    table = Table(title=kind)
    for c in ("name", "plugin", "options", "description"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            r["name"], r["plugin"], ", ".join(f"{k}={v}" for k, v in r["options"].items()), r["doc"]
        )
    render.show(table)


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
        path = plots.sweep(rows, target)
    elif kind == "overlay":
        path = plots.overlay(rows[-1], target, record)
    else:
        path = getattr(plots, kind)(rows[-1], target)
    console.print(f"wrote {path}")


def main() -> None:
    """Console-script entry point."""
    app()
