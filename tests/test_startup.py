"""Commands a user waits on import neither torch nor plugins they do not need: `--help`,
`results` and `data --help` run without torch (lazy names in `ecgarena`, lazy CLI imports)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from typer.testing import CliRunner
from ecgarena.cli import app
result = CliRunner().invoke(app, sys.argv[1:])
assert result.exit_code == 0, result.output
print(sorted(m for m in ("torch", "scipy", "matplotlib") if m in sys.modules))
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["run", "--help"], ["matrix", "--help"], ["data", "--help"], ["results"]],
)
def test_a_command_that_needs_no_model_imports_no_torch(argv, tmp_path):
    if argv == ["results"]:
        argv = ["results", "--home", str(tmp_path)]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_import_ecgarena_loads_names_on_first_use():
    code = (
        "import sys, ecgarena; assert 'torch' not in sys.modules; "
        "ecgarena.pgd; assert 'torch' in sys.modules; "
        "assert all(hasattr(ecgarena, n) for n in ecgarena.__all__); "
        "assert set(ecgarena.__all__) <= set(dir(ecgarena))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        import ecgarena

        ecgarena.nosuch  # noqa: B018


def test_a_public_name_that_is_also_a_submodule_stays_the_function():
    code = (
        "import ecgarena.progress, ecgarena, inspect; "
        "assert inspect.isfunction(ecgarena.progress), ecgarena.progress"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
