"""`ecgarena new plugin`: each kind's package installs (a real pip install), passes its own
tests with the plugin kit, is listed by `ecgarena plugins`, and all four join one run."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from ecgarena.cli import app
from typer.testing import CliRunner

KINDS = ("attack", "defense", "model", "dataset")
RUN = "import sys; from ecgarena.cli import main; sys.argv = ['ecgarena', *sys.argv[1:]]; main()"
pytestmark = pytest.mark.xdist_group("scaffold")  # one worker installs the packages once


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The four generated packages, pip-installed into a folder the child processes see."""
    root = tmp_path_factory.mktemp("plugins")
    for kind in KINDS:
        out = CliRunner().invoke(
            app, ["new", "plugin", f"my-{kind}", "--kind", kind, "--dest", str(root)]
        )
        assert out.exit_code == 0, out.output
    site = root / "site"
    packages = [str(root / f"ecgarena-my-{k}") for k in KINDS]
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(site), *packages], check=True, capture_output=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    env["ECGARENA_PLUGINS"] += "," + ",".join(f"my-{k}" for k in KINDS)
    return root, env


@pytest.mark.parametrize("kind", KINDS)
def test_a_generated_plugin_passes_its_own_tests(installed, kind):
    root, env = installed
    tests = root / f"ecgarena-my-{kind}" / "tests"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
                         env=env, capture_output=True, text=True, cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]
    assert re.search(r"^2 passed", out.stdout, re.M), out.stdout


def test_generated_plugins_are_listed_and_join_a_run(installed, tmp_path):
    root, env = installed
    home = ["--home", str(tmp_path / "home")]
    listed = subprocess.run([sys.executable, "-c", RUN, "plugins", "--json", *home],
                            env=env, capture_output=True, text=True, check=True)  # fmt: skip
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    for kind in KINDS:
        assert rows[f"my-{kind}"]["registers"] == {f"{kind}s": [f"my-{kind}"]}, rows[f"my-{kind}"]
        assert rows[f"my-{kind}"]["errors"] == []
    spec = importlib.util.spec_from_file_location(
        "t", root / "ecgarena-my-dataset/tests/test_my_dataset.py"
    )
    sys.path.insert(0, str(root / "site"))
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        data = module.write_records(tmp_path / "data", n=60)
    finally:
        sys.path.remove(str(root / "site"))
    args = [
        "matrix",
        "--datasets",
        "my-dataset",
        "--data-dirs",
        f"my-dataset={data}",
        "--models",
        "my-model",
    ]
    args += [
        "--defenses",
        "none,my-defense",
        "--attacks",
        "my-attack,fgsm",
        "--eps",
        "0.05",
        "--epochs",
        "2",
    ]
    out = subprocess.run([sys.executable, "-c", RUN, *args, *home, "--json"],
                         env=env, capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    cells = json.loads(out.stdout)["cells"]
    assert [c["status"] for c in cells] == ["done"] * 4
    assert all(c["audit"]["passed"] for c in cells)
    bad = CliRunner().invoke(app, ["new", "plugin", "My_Attack", "--dest", str(tmp_path)])
    assert bad.exit_code == 2 and "plugin name 'My_Attack' must be lower-case" in bad.output
    again = CliRunner().invoke(app, ["new", "plugin", "my-attack", "--dest", str(root)])
    assert again.exit_code == 2 and "exists already" in again.output
