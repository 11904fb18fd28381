"""registry.toml is valid and agrees with the first-party plugins that are installed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from ecgarena.errors import UserError
from ecgarena.host import Host
from ecgarena.registry import REGISTRY, load_registry

from .conftest import ROOT


def test_registry_validates_and_lists_the_paper_plugins():
    registry = load_registry()
    names = {e.name: e for e in registry.plugin}
    for available in (
        "sap",
        "scar",
        "universal-deepfool",
        "randomized-smoothing",
        "adversarial-distillation",
        "cpr",
        "dna",
        "caslcnet",
    ):
        assert names[available].status == "available"
    assert Path(str(REGISTRY)).resolve() == (ROOT / "registry.toml").resolve()


def test_the_package_data_is_the_top_level_catalogue():
    packaged = files("ecgarena") / "registry.toml"
    assert packaged.read_text(encoding="utf-8") == (ROOT / "registry.toml").read_text("utf-8")


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="needs setuptools")
def test_a_wheel_ships_the_registry_and_reads_it_without_the_source_tree(tmp_path):
    src = tmp_path / "src"  # the core's files only: core/registry.toml stays a link
    for name in ("core", "cli"):
        shutil.copytree(
            ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md", "registry.toml"):
        shutil.copy2(ROOT / name, src / name)
    build = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-q", "-w", str(tmp_path / "dist")], check=True)
    (wheel,) = (tmp_path / "dist").glob("ecgarena-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); from ecgarena import registry as r; "
        "print(r.REGISTRY, len(r.load_registry().plugin))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path / "site")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    path, n = out.stdout.split()
    assert path == str(tmp_path / "site" / "ecgarena" / "registry.toml")
    assert int(n) == len(load_registry().plugin)


def test_available_entries_match_their_packages_and_registrations():
    host = Host()
    for entry in load_registry().plugin:
        if entry.status != "available":
            continue
        project = tomllib.loads((ROOT / entry.path / "pyproject.toml").read_text())["project"]
        assert project["name"] == entry.distribution
        assert entry.name in project["entry-points"]["ecgarena"]
        registered = [n for k in entry.kinds for n in host.plugins[entry.name].registers.get(k, [])]
        assert sorted(registered) == sorted(entry.provides)


def test_malformed_registry_is_one_line_error(tmp_path):
    bad = tmp_path / "registry.toml"
    bad.write_text('[[plugin]]\nname = "x"\nstatus = "maybe"\n')
    with pytest.raises(UserError) as e:
        load_registry(bad)
    assert "status" in str(e.value) and "\n" not in str(e.value)
    bad.write_text("[[plugin]\n")
    with pytest.raises(UserError, match="registry.toml"):
        load_registry(bad)


def test_status_lists_registry_entries_that_are_not_installed(tmp_path):
    from ecgarena.host import Host
    from ecgarena.registry import plugin_status

    path = tmp_path / "registry.toml"
    path.write_text(
        '[[plugin]]\nname = "future"\ndistribution = "ecgarena-future"\nkinds = ["attacks"]\n'
        'provides = ["future-attack"]\npaper = "a paper"\nstatus = "planned"\n'
    )
    rows = {r["name"]: r for r in plugin_status(Host(builtins=True).plugins, path)}
    assert rows["future"]["registry"] == "planned, not installed"
    assert rows["future"]["registers"] == {"attacks": ["future-attack"]}
    assert rows["ecgarena"]["registry"] == "core"
