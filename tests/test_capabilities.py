"""Optional capabilities and required members are checked when a plugin registers: a class that
declares one wrongly is refused with one line naming the plugin, the class, the member and what
is expected, and everything else still loads."""

from __future__ import annotations

import importlib
import json
import math
from typing import Any

import ecgarena
import pytest
import torch
from ecgarena import capabilities
from ecgarena.cli import app
from ecgarena.errors import PluginError
from ecgarena.host import Host, get_host
from ecgarena.protocols import DEFENSE_KINDS, ClassifierInfo
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from . import test_hooks
from .test_hooks import HEADER, plugin, write
from .test_host import install

plugin_dir = test_hooks.plugin_dir  # the fixture, shared

WRONG = [
    (
        "attacks",
        "default_eps_mv: ClassVar[float] = -0.1",
        "default_eps_mv is -0.1; expected a positive float ClassVar, in mV",
    ),
    (
        "attacks",
        "default_eps_mv: float = 0.2",
        "default_eps_mv is a pydantic option; the core reads it from the class (use ClassVar); "
        "expected a positive float ClassVar, in mV",
    ),
    (
        "attacks",
        'stronger_than: ClassVar[str] = "noise"',
        "stronger_than is 'noise'; expected a ClassVar tuple of attack names (str), e.g. "
        "('noise', 'fgsm')",
    ),
    ("attacks", 'eot: ClassVar[str] = "yes"', "eot is 'yes'; expected a bool"),
    (
        "attacks",
        "def expand_budget(self, eps_mv): ...",
        "expand_budget has signature (self, eps_mv); expected a method expand_budget(eps_mv, leads)",
    ),
    (
        "attacks",
        "def merge_reports(self, reports): ...",
        "merge_reports is a plain method; expected a staticmethod or classmethod "
        "merge_reports(reports) -> dict",
    ),
    (
        "attacks",
        "def run(self, classifier, x, y, threat): ...",
        "run has signature (self, classifier, x, y, threat); expected a method "
        "run(classifier, x, y, threat, ctx)",
    ),
    (
        "defenses",
        'kind: ClassVar[str] = "magic"',
        "kind is 'magic'; expected a ClassVar, one of none, preprocessing, training, "
        "architecture, ensemble, certified",
    ),
    (
        "defenses",
        "train: ClassVar[None] = None",
        "train is NoneType None, not callable; expected a method train(classifier, ctx) -> dict",
    ),
    (
        "datasets",
        "def cache_parts(self, extra): ...",
        "cache_parts has signature (self, extra); expected a method cache_parts() -> dict",
    ),
    (
        "datasets",
        'notes: ClassVar[str] = "odd"',
        "notes is 'odd'; expected a list of str (caveats shown with each cell)",
    ),
    (
        "models",
        "def build(self, n_leads): ...",
        "build has signature (self, n_leads); expected a method build(n_leads, n_samples, "
        "n_classes)",
    ),
]
NOUN = {"attacks": "attack", "defenses": "defense", "datasets": "dataset", "models": "model"}


@pytest.mark.parametrize("kind, extra, problem", WRONG)
def test_a_wrongly_declared_member_refuses_the_class_in_one_line(plugin_dir, kind, extra, problem):
    bad = write(plugin_dir, "fake_bad", plugin(kind, "wrong", extra))
    good = write(plugin_dir, "fake_good", plugin(kind, "right"))
    host = Host([bad, good], builtins=False)
    line = f"plugin 'bad': {NOUN[kind]} class Thing ('wrong'): {problem}"
    assert host.plugins["bad"].errors == [line]
    assert host.names(kind) == ["right"] and host.plugins["good"].errors == []
    with pytest.raises(PluginError) as e:
        host.get(kind, "wrong")
    assert str(e.value) == f"{line} (so it is not registered)"


def test_a_dataset_without_the_core_options_and_a_nameless_class_are_refused(plugin_dir):
    text = """
import ecgarena

class Bare:
    name = "bare"
    def load(self, split): ...
    def describe(self): ...
    def cache_parts(self): ...

class Plain(Bare):
    name = "plain"
    def __init__(self, data_dir=None, cache_dir=None): ...

class Nameless:
    pass

@ecgarena.hookimpl
def ecgarena_register_datasets(register):
    for cls in (Nameless, Bare, Plain):
        register(cls)
"""
    host = Host([write(plugin_dir, "fake_bare", text)], builtins=False)
    assert host.plugins["bare"].errors == [
        "plugin 'bare': <class 'fake_bare.Nameless'> has no string `name`",
        *(
            f"plugin 'bare': dataset class Bare ('bare'): {o} is not accepted by its "
            f"constructor; expected an option {o}: {t}"
            for o, t in (("data_dir", "Path | None"), ("cache_dir", "Path"))
        ),
    ]
    assert host.names("datasets") == ["plain"]


@pytest.mark.parametrize("kind", DEFENSE_KINDS)
def test_every_defense_kind_is_accepted(plugin_dir, kind):
    ep = write(plugin_dir, "fake_kind", plugin("defenses", "k", f'kind: ClassVar[str] = "{kind}"'))
    assert Host([ep], builtins=False).names("defenses") == ["k"]


def test_first_party_defense_kinds_are_the_documented_ones():
    host = Host()
    kinds = {e.cls.kind for e in host.entries["defenses"].values()}
    assert kinds <= set(DEFENSE_KINDS) and {"none", "certified", "ensemble"} <= kinds


CLASSIFIERS = (
    HEADER
    + """
class Norm(ecgarena.Classifier):
    certified_norm = "l1"
    def certify(self, x): ...

class Rule(ecgarena.Classifier):
    decision_rule = "PREDICT"
"""
    + plugin("models", "m").removeprefix(HEADER)
)


def test_classifier_capabilities_are_checked_when_their_plugin_registers(plugin_dir):
    host = Host([write(plugin_dir, "fake_clf", CLASSIFIERS)], builtins=False)
    assert host.plugins["clf"].errors == [
        "plugin 'clf': classifier class Norm: certified_norm is 'l1'; expected 'l2' or 'linf'",
        "plugin 'clf': classifier class Rule: decision_rule is declared without decide, so it "
        "is never used",
    ]
    assert host.names("models") == ["m"]


def test_a_classifier_claiming_to_certify_without_certify_fails_construction():
    with pytest.raises(PluginError, match=r"info.certifies is True but it has no certify\(x\)"):
        ecgarena.Classifier(torch.nn.Identity(), info=ClassifierInfo(certifies=True))


@pytest.mark.parametrize(
    "package", ["ecgarena_dna", "ecgarena_randomized_smoothing", "ecgarena_caslcnet"]
)
def test_first_party_classifiers_declare_their_capabilities_right(package):
    importlib.import_module(package)
    found = capabilities.classifier_classes(package)
    assert found and all(capabilities.problems("classifier", c) == [] for c in found)


def attack(**members: Any) -> type:
    """An attack class following the protocol, with `members` added."""
    return type(
        "Probe",
        (),
        {"name": "probe", "threat_model": lambda self, b: None, "run": lambda self, *a: None}
        | members,
    )


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-3, 3),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
    )
)
def test_default_eps_mv_is_accepted_exactly_when_a_positive_finite_number(eps):
    number = isinstance(eps, int | float) and not isinstance(eps, bool)
    ok = number and math.isfinite(eps) and eps > 0
    assert (capabilities.problems("attacks", attack(default_eps_mv=eps)) == []) == ok


names = st.text(min_size=0, max_size=4)


@given(st.one_of(st.tuples(names, names), st.lists(names, max_size=2), names))
def test_stronger_than_is_accepted_exactly_when_a_tuple_of_names(value):
    ok = isinstance(value, tuple) and all(value)
    assert (capabilities.problems("attacks", attack(stronger_than=value)) == []) == ok


def test_ecgarena_plugins_reports_a_refused_class_and_loads_the_rest(plugin_dir, monkeypatch):
    text = plugin("attacks", "bad-eps", "default_eps_mv: ClassVar[float] = 0")
    install(plugin_dir, "ecgarena-bad-eps", {"bad-eps": "fake_bad_eps"}, {"fake_bad_eps": text})
    monkeypatch.setenv("ECGARENA_PLUGINS", "bad-eps,basic-models")
    get_host.cache_clear()
    try:
        result = CliRunner().invoke(app, ["plugins", "--json"])
    finally:
        get_host.cache_clear()
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["bad-eps"]["errors"] == [
        "plugin 'bad-eps': attack class Thing ('bad-eps'): default_eps_mv is 0; expected a "
        "positive float ClassVar, in mV"
    ]
    assert (
        rows["bad-eps"]["registers"] == {} and rows["bad-eps"]["distribution"] == "ecgarena-bad-eps"
    )
    assert rows["basic-models"]["errors"] == [] and rows["basic-models"]["registers"]["models"]
