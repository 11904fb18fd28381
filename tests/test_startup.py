"""Commands a user waits on import neither torch nor plugins they do not need: `--help`,
`results` and `data --help` run without torch (lazy names in `ecgarena`, lazy CLI imports);
`plugins` and `list` read the home's verified inventory once the plugins were loaded once."""

from __future__ import annotations

import ast
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


def probe(*argv: str) -> list[str]:
    """The heavy modules a fresh CLI process imported for `argv`."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_plugins_and_list_load_plugins_only_when_the_inventory_no_longer_holds(tmp_path):
    home = ["--home", str(tmp_path)]
    assert "torch" in probe("plugins", *home)  # first time: plugins load, the inventory is written
    assert probe("plugins", *home) == probe("list", "attacks", *home) == []
    cache = tmp_path / "cache" / "inventory.json"
    cache.write_text(cache.read_text().replace('"pgd"', '"pgdx"'))  # its digest no longer checks
    assert "torch" in probe("list", "attacks", *home)
    assert '"pgdx"' not in cache.read_text() and probe("list", "attacks", *home) == []


def test_the_inventory_follows_plugin_selection_and_source_changes(tmp_path, monkeypatch):
    from ecgarena.inventory import fingerprint

    from tests.dists import install

    before = fingerprint()
    monkeypatch.setenv("ECGARENA_DISABLE_PLUGINS", "sap")
    assert fingerprint() != before
    monkeypatch.delenv("ECGARENA_DISABLE_PLUGINS")
    assert fingerprint() == before
    root = tmp_path / "site"
    root.mkdir()
    install(root, "ecgarena-extra", {"extra": "ecgarena_extra"}, {"ecgarena_extra": "X = 1\n"})
    monkeypatch.syspath_prepend(str(root))
    installed = fingerprint()
    assert installed != before  # a new plugin distribution
    (root / "ecgarena_extra.py").write_text("X = 22\n")  # its source edited (size changes)
    assert fingerprint() != installed


def test_data_info_of_a_core_dataset_loads_no_plugin(tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from ecgarena.cli import app; "
        "args = ['data', 'info', 'synthetic', '--opt', 'n_records=300', '--home', sys.argv[1]]; "
        "assert CliRunner().invoke(app, ['plugins', '--home', sys.argv[1]]).exit_code == 0; "
        "[sys.modules.pop(m) for m in list(sys.modules) if m.startswith('ecgarena_')]; "
        "import ecgarena.host as h; h.get_host.cache_clear(); "
        "out = CliRunner().invoke(app, args); assert out.exit_code == 0, out.output; "
        "print(sorted(m for m in sys.modules if m.startswith('ecgarena_') and 'finder' not in m))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
