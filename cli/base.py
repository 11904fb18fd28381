"""The CLI's shared pieces: the Typer app, its one-line error handling, option types,
exit codes and the results store of a home folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from ecgarena import paths
from ecgarena.errors import UserError
from ecgarena.progress import console
from ecgarena.result import CellResult
from ecgarena.store import Store
from rich.text import Text
from typer.core import TyperGroup

from .options import drop_none


def one_line_error(message: str) -> None:
    """The CLI's only error form: one red line on stderr."""
    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


def plain_flags(command: Any, ctx: typer.Context) -> None:
    """Flags (and `--help`) take no value: no type column in the help (Typer shows `<bool>`);
    sub-groups likewise."""
    for param in [*command.params, command.get_help_option(ctx)]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        plain_flags(sub, ctx)


class ArenaGroup(TyperGroup):
    """Turns user errors and bad flags into one red line and exit code 2, never a traceback
    or a usage box."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""  # a flag: no `<bool>` in the help
        return option

    def get_command(self, ctx: typer.Context, name: str) -> Any:
        """A sub-command, its flags shown without a `<bool>` type in its help."""
        command = super().get_command(ctx, name)
        if command is not None:
            plain_flags(command, ctx)
        return command

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

Home = Annotated[
    Path | None, typer.Option(help="state folder (default $ECGARENA_HOME or ./.ecgarena)")
]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")]
Device = Annotated[str | None, typer.Option(help="cpu | cuda | auto")]
AttackBatch = Annotated[
    int | None,
    typer.Option(
        min=1, max=65536, help="records per attack call (default 128; larger fills a GPU)"
    ),
]
Precision = Annotated[
    str | None,
    typer.Option(
        help="fp32 | bf16 | fp16: forward passes of evaluation and attacks under autocast "
        "(training, δ, projections and audits stay fp32; default fp32)"
    ),
]
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
        help="run each attack in a separate process that returns δ and its reports only (this "
        "process keeps the reference weights, audits and evaluates)",
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
