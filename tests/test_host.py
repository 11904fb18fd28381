"""The plugin host: broken plugins, name clashes, allow/block lists by entry-point name and by
distribution, and one entry-point name claimed by two installed distributions."""

from __future__ import annotations

import json
import sys

import pytest
from ecgarena.cli import app
from ecgarena.errors import PluginError, UserError
from ecgarena.host import Host, get_host
from typer.testing import CliRunner

from tests.dists import install

from . import test_hooks
from .test_hooks import plugin, write

plugin_dir = test_hooks.plugin_dir  # the fixture, shared


def test_broken_plugin_is_recorded_and_does_not_hide_others(plugin_dir):
    good = write(plugin_dir, "fake_good", plugin("attacks", "a1"))
    broken = write(plugin_dir, "fake_broken", "raise ImportError('missing dependency xyz')\n")
    failing = write(
        plugin_dir,
        "fake_failing",
        """
        import ecgarena
        @ecgarena.hookimpl
        def ecgarena_register_attacks(register):
            raise ValueError("bad registration")
    """,
    )
    host = Host([good, broken, failing], builtins=False)  # failing is called first
    assert host.names("attacks") == ["a1"]
    assert host.plugins["broken"].errors == ["import failed: ImportError: missing dependency xyz"]
    assert host.plugins["failing"].errors == [
        "ecgarena_register_attacks failed: ValueError: bad registration"
    ]
    with pytest.raises(PluginError) as e:  # a name the broken plugin would have brought
        host.get("attacks", "b1")
    assert "available: a1" in str(e.value)
    assert "broken: import failed: ImportError: missing dependency xyz" in str(e.value)


def test_name_clash_names_both_plugins(plugin_dir):
    one = write(plugin_dir, "fake_one", plugin("attacks", "same"))
    two = write(plugin_dir, "fake_two", plugin("attacks", "same"))
    host = Host([one, two], builtins=False)
    with pytest.raises(PluginError) as e:
        host.get("attacks", "same")
    assert "'one'" in str(e.value) and "'two'" in str(e.value)


def test_unknown_name_suggests_close_matches(plugin_dir):
    host = Host([write(plugin_dir, "fake_pgdlike", plugin("attacks", "pgd"))], builtins=False)
    with pytest.raises(PluginError, match="did you mean pgd"):
        host.get("attacks", "pgdd")


def test_bad_options_are_one_line(plugin_dir):
    host = Host([write(plugin_dir, "fake_opts", plugin("attacks", "x"))], builtins=False)
    with pytest.raises(UserError) as e:
        host.create("attacks", "x", {"strength": "lots", "colour": 1})
    assert "strength" in str(e.value) and "colour: unknown option" in str(e.value)
    assert "\n" not in str(e.value)


def test_allow_and_block_lists_by_entry_point_name(plugin_dir, monkeypatch):
    eps = [write(plugin_dir, f"fake_p{i}", plugin("models", f"n{i}")) for i in range(3)]
    monkeypatch.setenv("ECGARENA_PLUGINS", "p0, p2")
    assert Host(eps, builtins=False).names("models") == ["n0", "n2"]
    monkeypatch.delenv("ECGARENA_PLUGINS")
    monkeypatch.setenv("ECGARENA_DISABLE_PLUGINS", "p2")
    assert Host(eps, builtins=False).names("models") == ["n0", "n1"]


@pytest.fixture
def site(plugin_dir):
    """A site folder where an impostor distribution claims the entry point `basic-models` of
    the installed ecgarena-basic-models, and two fake distributions share `shared`."""
    install(plugin_dir, "ecgarena-impostor", {"basic-models": "fake_impostor"}, {})
    install(plugin_dir, "ecgarena-fake-a", {"shared": "fake_a"}, {"fake_a": plugin("models", "a")})
    install(plugin_dir, "ecgarena-fake-b", {"shared": "fake_b"}, {"fake_b": plugin("models", "b")})
    get_host.cache_clear()
    yield plugin_dir
    get_host.cache_clear()


def test_an_entry_point_two_distributions_claim_loads_neither_and_names_both(site, monkeypatch):
    monkeypatch.setenv("ECGARENA_PLUGINS", "basic-models,shared")
    host = Host(builtins=False)
    assert host.names("models") == []
    assert "fake_impostor" not in sys.modules and "fake_a" not in sys.modules
    (line,) = host.plugins["basic-models"].errors
    assert line == (
        "entry point 'basic-models' is claimed by ecgarena-basic-models "
        "(ecgarena_basic_models) and ecgarena-impostor (fake_impostor): neither is loaded; "
        "uninstall one, or choose one with ECGARENA_PLUGINS=dist:<distribution>"
    )
    assert (
        "ecgarena-fake-a (fake_a) and ecgarena-fake-b (fake_b)" in host.plugins["shared"].errors[0]
    )


def test_allow_and_block_lists_by_distribution(site, monkeypatch):
    monkeypatch.setenv("ECGARENA_PLUGINS", "dist:ecgarena-basic-models,dist:Ecgarena_Fake.B")
    host = Host(builtins=False)
    assert {"cnn", "b"} <= set(host.names("models")) and "a" not in host.names("models")
    assert host.plugins["basic-models"].distribution == "ecgarena-basic-models"
    assert host.plugins["shared"].distribution == "ecgarena-fake-b"
    assert all(not r.errors for r in host.plugins.values())
    monkeypatch.setenv("ECGARENA_PLUGINS", "basic-models,shared")
    monkeypatch.setenv("ECGARENA_DISABLE_PLUGINS", "dist:ecgarena-impostor,dist:ecgarena-fake-a")
    host = Host(builtins=False)
    assert host.plugins["shared"].distribution == "ecgarena-fake-b"
    assert {"cnn", "b"} <= set(host.names("models")) and "a" not in host.names("models")


def test_ecgarena_plugins_reports_the_claimed_entry_point(site, monkeypatch):
    monkeypatch.setenv("ECGARENA_PLUGINS", "basic-models,basic-defenses")
    result = CliRunner().invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert "ecgarena-impostor" in rows["basic-models"]["errors"][0]
    assert rows["basic-models"]["distribution"] == "ecgarena-basic-models, ecgarena-impostor"
    assert rows["basic-defenses"]["errors"] == [] and rows["basic-defenses"]["registers"]


def test_builtins_register_through_hooks_and_first_party_plugins_load():
    host = Host()
    assert {"synthetic", "ptbxl", "mitdb"} <= set(host.plugins["ecgarena"].registers["datasets"])
    assert {"cnn", "resnet1d18"} <= set(host.names("models"))
    assert {"noise", "fgsm", "pgd"} <= set(host.names("attacks"))
    assert {"none", "median", "pgd-at"} <= set(host.names("defenses"))
    assert all(not rec.errors for rec in host.plugins.values())
