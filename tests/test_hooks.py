"""Every hook, called through pluggy: what each collects, tryfirst/trylast order, new-style
wrappers, and the implementations the host refuses (old-style wrappers, unknown hook names,
unmarked functions), each with one line naming its plugin."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from ecgarena.host import Host

HEADER = """\
from pathlib import Path
from typing import ClassVar
import ecgarena
import torch
from pydantic import BaseModel, ConfigDict
"""

BODIES = {
    "datasets": """\
    data_dir: Path | None = None
    cache_dir: Path = Path(".")
    def load(self, split): ...
    def describe(self): return {}
    def cache_parts(self): return {}
""",
    "models": "    def build(self, n_leads, n_samples, n_classes): ...\n",
    "attacks": """\
    def threat_model(self, budget_mv): return ecgarena.ThreatModel(budget_mv=budget_mv)
    def run(self, classifier, x, y, threat, ctx): return torch.zeros_like(x)
""",
    "defenses": """\
    kind: ClassVar[str] = "none"
    def build(self, ctx): return ecgarena.Classifier(ctx.build_net())
    def train(self, classifier, ctx): return {}
""",
}


def piece(kind: str, name: str, cls: str = "Thing", extra: str = "") -> str:
    """A pydantic class of `kind` that follows its protocol, plus `extra` class-body lines."""
    return (
        f"class {cls}(BaseModel):\n"
        '    model_config = ConfigDict(extra="forbid")\n'
        f'    name: ClassVar[str] = "{name}"\n'
        "    strength: int = 1\n"
        f"{BODIES[kind]}{textwrap.indent(textwrap.dedent(extra), '    ')}\n"
    )


def plugin(kind: str, name: str, extra: str = "", marker: str = "@ecgarena.hookimpl") -> str:
    """A plugin module registering one `kind` class named `name`."""
    return (
        HEADER
        + piece(kind, name, extra=extra)
        + f"\n{marker}\ndef ecgarena_register_{kind}(register):\n    register(Thing)\n"
    )


def write(dir_: Path, module: str, text: str) -> EntryPoint:
    """Write module `fake_<name>` and return its entry point `<name>`."""
    (dir_ / f"{module}.py").write_text(textwrap.dedent(text))
    return EntryPoint(name=module.removeprefix("fake_"), value=module, group="ecgarena")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ECGARENA_PLUGINS", raising=False)  # the fake entry points are explicit
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[mod]


def assert_collected(plugin_dir: Path, kind: str) -> None:
    """A plugin's `kind` registration is collected, attributed and created with options."""
    host = Host([write(plugin_dir, f"fake_{kind}", plugin(kind, f"thing-{kind}"))], builtins=False)
    assert host.names(kind) == [f"thing-{kind}"]
    assert host.plugins[kind].registers == {kind: [f"thing-{kind}"]}
    assert host.plugins[kind].errors == []
    assert host.create(kind, f"thing-{kind}", {"strength": 3}).strength == 3


def test_hook_ecgarena_register_datasets(plugin_dir):
    assert_collected(plugin_dir, "datasets")


def test_hook_ecgarena_register_models(plugin_dir):
    assert_collected(plugin_dir, "models")


def test_hook_ecgarena_register_attacks(plugin_dir):
    assert_collected(plugin_dir, "attacks")


def test_hook_ecgarena_register_defenses(plugin_dir):
    assert_collected(plugin_dir, "defenses")


OBSERVER = """
import ecgarena
SEEN = []
@ecgarena.hookimpl
def ecgarena_result(result):
    SEEN.append(result["key"])
"""

BAD_OBSERVER = """
import ecgarena
@ecgarena.hookimpl
def ecgarena_result(result):
    raise RuntimeError("logger down")
"""


def test_hook_ecgarena_result_observers_and_their_failures(plugin_dir):
    ok = write(plugin_dir, "fake_observer", OBSERVER)
    bad = write(plugin_dir, "fake_badobserver", BAD_OBSERVER)  # registered last: runs first
    host = Host([ok, bad], builtins=False)
    assert host.notify_result({"key": "abc"}) == [
        "result observer 'badobserver' failed: RuntimeError: logger down"
    ]
    assert sys.modules["fake_observer"].SEEN == ["abc"]


def ordered(marker: str, name: str) -> str:
    return (
        HEADER
        + piece("models", name)
        + f"\n{marker}\ndef ecgarena_register_models(register):\n    register(Thing)\n"
    )


def test_tryfirst_and_trylast_order_the_calls_across_plugins(plugin_dir):
    eps = [
        write(plugin_dir, "fake_first", ordered("@ecgarena.hookimpl(tryfirst=True)", "a")),
        write(plugin_dir, "fake_plain", ordered("@ecgarena.hookimpl", "b")),
        write(plugin_dir, "fake_last", ordered("@ecgarena.hookimpl(trylast=True)", "c")),
    ]
    assert list(Host(eps, builtins=False).entries["models"]) == ["a", "b", "c"]
    assert list(Host(eps[::-1], builtins=False).entries["models"]) == ["a", "b", "c"]


WRAPPER = (
    HEADER
    + piece("models", "before", "Before")
    + piece("models", "after", "After")
    + """
SEEN = []

@ecgarena.hookimpl(wrapper=True)
def ecgarena_register_models(register):
    register(Before)
    {fail_before}
    outcome = yield
    SEEN.append(outcome)
    register(After)
    {fail_after}
    return outcome
"""
)


@pytest.mark.parametrize(
    "fail, registered, error",
    [
        ({}, ["before", "middle", "after"], None),
        ({"fail_before": "raise ValueError('no setup')"}, ["before", "middle"], "no setup"),
        (
            {"fail_after": "raise ValueError('no teardown')"},
            ["before", "middle", "after"],
            "teardown",
        ),
    ],
)
def test_wrapper_impls_wrap_every_plugin_and_their_failures_stay_theirs(
    plugin_dir, fail, registered, error
):
    text = WRAPPER.format(**{"fail_before": "", "fail_after": "", **fail})
    wrap = write(plugin_dir, "fake_wrap", text)
    other = write(plugin_dir, "fake_other", plugin("models", "middle"))
    host = Host([wrap, other], builtins=False)
    assert list(host.entries["models"]) == registered
    assert host.plugins["other"].registers == {"models": ["middle"]}
    assert host.plugins["other"].errors == []
    errors = host.plugins["wrap"].errors
    assert errors == ([] if error is None else [errors[0]])
    if error:
        assert error in errors[0] and errors[0].startswith("ecgarena_register_models failed")
    else:
        assert sys.modules["fake_wrap"].SEEN == [[]]


@pytest.mark.parametrize(
    "marker, function, error",
    [
        (
            "@ecgarena.hookimpl(hookwrapper=True)",
            "ecgarena_register_models",
            "plugin 'odd': ecgarena_register_models uses hookwrapper=True; ecgarena hooks take wrapper=True",
        ),
        (
            "@ecgarena.hookimpl",
            "ecgarena_register_model",
            "plugin 'odd': ecgarena_register_model is not an ecgarena hook (valid: ecgarena_register_attacks,",
        ),
        (
            "",
            "ecgarena_register_models",
            "plugin 'odd': ecgarena_register_models is not marked @ecgarena.hookimpl, so it is never called",
        ),
        (
            "@ecgarena.hookimpl(wrapper=True)",
            "ecgarena_register_models",
            "plugin 'odd': ecgarena_register_models has wrapper=True but is not a generator function",
        ),
    ],
)
def test_implementations_the_host_cannot_call_are_one_line_errors(
    plugin_dir, marker, function, error
):
    text = HEADER + f"\n{marker}\ndef {function}(register):\n    yield\n"
    if "generator" in error:
        text = text.replace("    yield\n", "    pass\n")
    odd = write(plugin_dir, "fake_odd", text)
    good = write(plugin_dir, "fake_good", plugin("models", "fine"))
    host = Host([odd, good], builtins=False)
    (line,) = host.plugins["odd"].errors
    assert line.startswith(error) and "\n" not in line
    assert host.names("models") == ["fine"]


def test_an_implementation_with_arguments_the_hook_lacks_fails_to_register(plugin_dir):
    text = HEADER + "\n@ecgarena.hookimpl\ndef ecgarena_result(result, extra):\n    pass\n"
    host = Host([write(plugin_dir, "fake_extra", text)], builtins=False)
    (line,) = host.plugins["extra"].errors
    assert line.startswith("register failed: PluginValidationError") and "extra" in line
    assert "\n" not in line
