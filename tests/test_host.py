"""The plugin host: every hook, broken plugins, name clashes, allow/block lists."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest
from ecgarena.errors import PluginError, UserError
from ecgarena.host import Host

PLUGIN = """
from typing import ClassVar
import ecgarena
from pydantic import BaseModel, ConfigDict

class {cls}(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str] = "{name}"
    kind: ClassVar[str] = "none"
    strength: int = 1

@ecgarena.hookimpl
def ecgarena_register_{kind}(register):
    register({cls})
"""

SEEN = []


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ECGARENA_PLUGINS", raising=False)  # the fake entry points are explicit
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[mod]


def write(dir_, module, text):
    (dir_ / f"{module}.py").write_text(textwrap.dedent(text))
    return EntryPoint(name=module.removeprefix("fake_"), value=module, group="ecgarena")


@pytest.mark.parametrize("kind", ["datasets", "models", "attacks", "defenses"])
def test_every_register_hook_is_collected(plugin_dir, kind):
    ep = write(
        plugin_dir, f"fake_{kind}", PLUGIN.format(cls="Thing", name=f"thing-{kind}", kind=kind)
    )
    host = Host([ep], builtins=False)
    assert host.names(kind) == [f"thing-{kind}"]
    assert host.plugins[kind].registers == {kind: [f"thing-{kind}"]}
    obj = host.create(kind, f"thing-{kind}", {"strength": 3})
    assert obj.strength == 3


def test_result_observer_hook_receives_results_and_failures_are_warnings(plugin_dir):
    ok = write(
        plugin_dir,
        "fake_observer",
        """
        import ecgarena
        SEEN = []
        @ecgarena.hookimpl
        def ecgarena_result(result):
            SEEN.append(result["key"])
    """,
    )
    bad = write(
        plugin_dir,
        "fake_badobserver",
        """
        import ecgarena
        @ecgarena.hookimpl
        def ecgarena_result(result):
            raise RuntimeError("logger down")
    """,
    )
    host = Host([ok, bad], builtins=False)
    warnings = host.notify_result({"key": "abc"})
    assert sys.modules["fake_observer"].SEEN == ["abc"]
    assert warnings == ["result observer 'badobserver' failed: logger down"]


def test_broken_plugin_is_recorded_and_does_not_hide_others(plugin_dir):
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
    good = write(plugin_dir, "fake_good", PLUGIN.format(cls="A", name="a1", kind="attacks"))
    host = Host([broken, failing, good], builtins=False)
    assert host.names("attacks") == ["a1"]
    assert "missing dependency xyz" in host.plugins["broken"].errors[0]
    assert "bad registration" in host.plugins["failing"].errors[0]


def test_name_clash_names_both_plugins(plugin_dir):
    one = write(plugin_dir, "fake_one", PLUGIN.format(cls="A", name="same", kind="attacks"))
    two = write(plugin_dir, "fake_two", PLUGIN.format(cls="B", name="same", kind="attacks"))
    host = Host([one, two], builtins=False)
    with pytest.raises(PluginError) as e:
        host.get("attacks", "same")
    assert "'one'" in str(e.value) and "'two'" in str(e.value)


def test_unknown_name_suggests_close_matches(plugin_dir):
    ep = write(plugin_dir, "fake_pgdlike", PLUGIN.format(cls="A", name="pgd", kind="attacks"))
    host = Host([ep], builtins=False)
    with pytest.raises(PluginError, match="did you mean pgd"):
        host.get("attacks", "pgdd")


def test_bad_options_are_one_line(plugin_dir):
    ep = write(plugin_dir, "fake_opts", PLUGIN.format(cls="A", name="x", kind="attacks"))
    host = Host([ep], builtins=False)
    with pytest.raises(UserError) as e:
        host.create("attacks", "x", {"strength": "lots", "colour": 1})
    assert "strength" in str(e.value) and "colour: unknown option" in str(e.value)
    assert "\n" not in str(e.value)


def test_allow_and_block_lists(plugin_dir, monkeypatch):
    eps = [
        write(plugin_dir, f"fake_p{i}", PLUGIN.format(cls="A", name=f"n{i}", kind="models"))
        for i in range(3)
    ]
    monkeypatch.setenv("ECGARENA_PLUGINS", "p0,p2")
    assert Host(eps, builtins=False).names("models") == ["n0", "n2"]
    monkeypatch.delenv("ECGARENA_PLUGINS")
    monkeypatch.setenv("ECGARENA_DISABLE_PLUGINS", "p2")
    assert Host(eps, builtins=False).names("models") == ["n0", "n1"]


def test_builtins_register_through_hooks_and_first_party_plugins_load():
    host = Host()
    assert {"synthetic", "ptbxl", "mitdb"} <= set(host.plugins["ecgarena"].registers["datasets"])
    assert {"cnn", "resnet1d18"} <= set(host.names("models"))
    assert {"noise", "fgsm", "pgd"} <= set(host.names("attacks"))
    assert {"none", "median", "pgd-at"} <= set(host.names("defenses"))
    assert all(not rec.errors for rec in host.plugins.values())
