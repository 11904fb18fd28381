"""`ecgarena run` (one cell) and `ecgarena matrix` (the cross product): parse, hand to the
core, render."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from ecgarena import paths
from ecgarena.errors import UserError
from ecgarena.host import get_host
from ecgarena.progress import progress
from ecgarena.result import CellResult
from ecgarena.specs import MatrixSpec, RunSpec, read_toml, validate

from . import render
from .base import (
    AttackBatch,
    Config,
    DataDir,
    Device,
    Epochs,
    EvalDataDir,
    EvalDataset,
    Home,
    Isolate,
    Json,
    MaxRecords,
    Opts,
    Precision,
    SourceDefense,
    SourceModel,
    _train,
    app,
    exit_code,
    store_of,
)
from .options import budget, budget_list, comma_list, drop_none, key_values

if TYPE_CHECKING:  # the cell pipeline imports torch: only inside the commands that run cells
    from ecgarena.matrix import CellTask, Plan
    from ecgarena.resources import Resources


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
    precision: Precision = None,
    attack_batch: AttackBatch = None,
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
            "precision": precision,
            "attack_batch": attack_batch,
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
    from ecgarena import matrix as grid  # torch: only once a command runs (fast `--help`)
    from ecgarena.resources import Resources

    res = Resources(get_host(), paths.home(home), isolate)
    result = grid.run_and_store(res, store_of(home), spec, force=force)
    if json_out:
        render.print_json(result.row())
    else:
        render.run_result(result)
    if exit_code([result]):
        raise typer.Exit(exit_code([result]))


EXECUTORS = ("local", "pool", "ray")


def _execute(
    executor: str,
    where: tuple[int, str | None, str | None],
    work: Plan,
    res: Resources,
    home: Path | None,
    force: bool,
    on_cell: Callable[[CellTask, CellResult | None], None],
) -> list[CellResult]:
    """Run a plan on the chosen executor (`where`: workers, --devices, --ray-address)."""
    workers, devices, address = where
    store = store_of(home)
    if executor == "pool":
        import torch
        from ecgarena.pool import run_pool

        threads = max(1, torch.get_num_threads() // workers)
        chosen = comma_list(devices) if devices else None
        return run_pool(work, res, store, workers, threads, force, on_cell, chosen)
    if executor == "ray":
        from ecgarena.ray_executor import run_ray

        return run_ray(work, res, store, workers, address, force, on_cell)
    from ecgarena.matrix import run_local

    return run_local(work, res, store, force=force, on_cell=on_cell)


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
    precision: Precision = None,
    attack_batch: AttackBatch = None,
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
    show_plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="show the train tasks and cells (stored or to run); run nothing"
        ),
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            help="local: cell by cell in this process; pool: --workers processes; ray: Ray "
            "tasks, --workers at a time. pool and ray train each classifier once before the "
            "cells that need it (same numbers as local run with the workers' thread count)"
        ),
    ] = "local",
    workers: Annotated[
        int,
        typer.Option(min=1, max=256, help="worker processes (pool) or concurrent tasks (ray)"),
    ] = 2,
    devices: Annotated[
        str | None,
        typer.Option(help="pool: one worker pinned to each device, e.g. cuda:0,cuda:1"),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="ray: join this cluster (auto: the one `ray start` made); none: a local one"
        ),
    ] = None,
    home: Home = None,
    json_out: Json = False,
) -> None:
    """Run datasets × models × defenses × attacks × budgets × seeds; resume skips stored cells.

    Exit code 3 when any cell violates its threat model, 1 when any cell failed."""
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r} (valid: {', '.join(EXECUTORS)})")
    for flag, value, needs in (
        ("--devices", devices, "pool"),
        ("--ray-address", ray_address, "ray"),
    ):
        if value is not None and executor != needs:
            raise UserError(f"{flag} {value!r} needs --executor {needs} (not {executor})")
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
            "precision": precision,
            "attack_batch": attack_batch,
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
    from ecgarena import matrix as grid  # (see run)
    from ecgarena.resources import Resources

    res = Resources(get_host(), paths.home(home), isolate)
    work = grid.plan(spec, res)  # every name and option checked before anything trains
    if show_plan:
        render.plan_table(work, [grid.standing(res, store_of(home), c.spec) for c in work.cells])
        return
    with progress() as bar:
        task = bar.add_task("matrix", total=len(work.cells), info="")

        def on_cell(cell: grid.CellTask, done: CellResult | None) -> None:
            c = cell.spec
            if done is None:
                bar.update(task, info=f"{c.defense}/{c.attack} ε={render.eps_text(c.eps)}")
            else:
                bar.advance(task)

        results = _execute(
            executor, (workers, devices, ray_address), work, res, home, force, on_cell
        )
    if json_out:
        # tracebacks of failed cells stay in the store: the output names the error in one line
        render.print_json(
            {"cells": [r.model_dump(mode="json", exclude={"traceback"}) for r in results]}
        )
    else:
        render.results_table(results, title=f"matrix: {len(results)} cells")
    if exit_code(results):
        raise typer.Exit(exit_code(results))
