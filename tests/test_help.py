"""Every command's help: each option described, flags without a `<bool>` type, a default that
is not obvious stated (Typer's `[default: …]` or the help's own "default")."""

from __future__ import annotations

import click
import pytest
import typer
from ecgarena.cli import app
from typer.testing import CliRunner


def commands(group: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*path, name))
        if hasattr(command, "commands"):
            out += commands(command, (*path, name))
    return out


ROOT = typer.main.get_command(app)
ALL = [(), *commands(ROOT)]


def resolve(path: tuple[str, ...]) -> click.Command:
    command = ROOT
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "ecgarena")
def test_every_option_is_described_and_no_flag_shows_a_type(path):
    out = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "<bool>" not in out.output
    for param in resolve(path).params:
        if param.param_type_name == "option":
            name = param.opts[-1]
            assert (param.help or "").strip(), f"{' '.join(path)} {name}: no help text"
            shown = param.default is not None and not param.is_flag and param.default != []
            if shown:
                line = next(line for line in out.output.splitlines() if name in line)
                rest = out.output[out.output.index(line) :][:600]
                assert "default" in rest, (
                    f"{' '.join(path)} {name}: default {param.default!r} not shown"
                )
