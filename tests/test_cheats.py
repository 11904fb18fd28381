"""A hostile plugin author's attacks, installed as a real third-party distribution and run
through the CLI: each is caught, the cached classifier survives it, `run`/`matrix` exit 3,
and with `--isolate` even an attack that patches the core in its own process is caught."""

from __future__ import annotations

import json
import textwrap

import pytest
from ecgarena.cli import app
from typer.testing import CliRunner

from tests.dists import install, visible

SMALL = ["--dataset-opt", "n_records=300", "--epochs", "2", "--max-records", "40"]
MATRIX_SMALL = ["--param", "synthetic.n_records=300", "--epochs", "2", "--max-records", "40"]

HOSTILE = '''
import math
import ecgarena
import torch


class Base:
    name = "base"

    def threat_model(self, budget_mv):
        return ecgarena.ThreatModel(budget_mv=budget_mv)


class Wide(Base):
    """Declares 1.5x the requested budget and uses it."""

    name = "wide"

    def threat_model(self, budget_mv):
        return ecgarena.ThreatModel(budget_mv=1.5 * budget_mv)

    def run(self, classifier, x, y, threat, ctx):
        return torch.full_like(x, 1.5 * 0.05)


class Loose(Base):
    """Tries to loosen its own audit with a tolerance of 1 mV."""

    name = "loose"

    def threat_model(self, budget_mv):
        return ecgarena.ThreatModel(budget_mv=budget_mv, tolerance_mv=1.0)

    def run(self, classifier, x, y, threat, ctx):
        return torch.zeros_like(x)


class Negate(Base):
    """Damages the cached classifier (negated weights) and returns delta = 0."""

    name = "negate"

    def run(self, classifier, x, y, threat, ctx):
        with torch.no_grad():
            for p in classifier.parameters():
                p.neg_()
        return torch.zeros_like(x)


class Tone(Base):
    """Claims a 15 Hz band; hides a 40 Hz tone at 0.4 eps on one lead under large
    low-frequency energy on the others."""

    name = "tone"

    def threat_model(self, budget_mv):
        return ecgarena.ThreatModel(budget_mv=budget_mv, band_hz=15.0)

    def run(self, classifier, x, y, threat, ctx):
        eps = threat.budget_mv
        t = torch.arange(x.shape[-1], device=x.device) / ctx.info.fs
        d = (eps * torch.sin(2 * math.pi * 1.0 * t)).expand_as(x).clone()
        d[:, 2] = 0.4 * eps * torch.sin(2 * math.pi * 40.0 * t)
        return d.to(x.dtype)


class Patch(Base):
    """Replaces the core's audit at run time, then returns 10x the budget."""

    name = "patch"

    def run(self, classifier, x, y, threat, ctx):
        import ecgarena.attack_call as ac
        import ecgarena.audit as au

        ac.audit = lambda *a, **k: au.AuditReport()
        au.AuditReport.passed = property(lambda self: True)
        return torch.full_like(x, 10 * threat.budget_mv)


@ecgarena.hookimpl
def ecgarena_register_attacks(register):
    for cls in (Wide, Loose, Negate, Tone, Patch):
        register(cls)
'''


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Install the hostile plugin as a distribution on a path the child processes see too."""
    root = tmp_path_factory.mktemp("site")
    install(
        root,
        "ecgarena-hostile",
        {"hostile": "ecgarena_hostile"},
        {"ecgarena_hostile": textwrap.dedent(HOSTILE)},
    )
    plugins = "basic-models,basic-attacks,basic-defenses,hostile"
    with visible(root, plugins, ("ecgarena_hostile",)):
        yield root


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("cheat-home")


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def run_json(home, attack, *extra):
    result = invoke(
        "run", "--attack", attack, "--eps", "0.05", *SMALL, *extra, "--home", home, "--json"
    )
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None


def failed_checks(result):
    return {c["name"] for c in result["audit"]["checks"] if not c["passed"]}


def test_a_wider_declared_threat_model_is_a_violation_and_exits_3(hostile, home):
    code, out = run_json(home, "wide")
    assert code == 3
    assert {"threat model", "budget"} <= failed_checks(out)
    assert out["contract"]["declared"]["budget_mv"] == pytest.approx(0.075)
    assert out["threat"]["budget_mv"] == pytest.approx(0.05)  # audited against the run's ε


def test_a_threat_model_that_loosens_its_tolerance_is_refused_in_one_line(hostile, home):
    result = invoke("run", "--attack", "loose", *SMALL, "--home", home)
    assert result.exit_code == 2
    assert "tolerance_mv: unknown option" in result.output


def test_per_lead_band_limit_catches_a_tone_on_one_lead(hostile, home):
    code, out = run_json(home, "tone")
    assert code == 3 and failed_checks(out) == {"band limit"}


def test_damaged_weights_are_a_violation_and_the_next_cell_sees_the_reference(hostile, home):
    clean = run_json(home, "noise")[1]["clean"]["accuracy"]
    result = invoke(
        "matrix",
        "--attacks",
        "negate,noise",
        "--eps",
        "0.05",
        *MATRIX_SMALL,
        "--force",
        "--home",
        home,
        "--json",
    )
    assert result.exit_code == 3
    cells = {c["spec"]["attack"]: c for c in json.loads(result.stdout)["cells"]}
    assert "classifier unchanged" in failed_checks(cells["negate"])
    assert cells["negate"]["clean"]["accuracy"] == pytest.approx(clean)
    assert cells["noise"]["audit"]["passed"]
    assert cells["noise"]["clean"]["accuracy"] == pytest.approx(clean)  # not 0: restored


def test_an_attack_patching_the_audit_is_caught_with_and_without_isolation(hostile, home):
    code, out = run_json(home, "patch")
    assert code == 3 and {"budget", "core untouched"} <= failed_checks(out)
    code, out = run_json(home, "patch", "--isolate", "--force")
    assert code == 3 and out["isolated"]
    assert "budget" in failed_checks(out) and "core untouched" not in failed_checks(out)


def test_isolation_gives_the_same_numbers_as_in_process(hostile, home):
    _, plain = run_json(home, "pgd", "--force")
    _, isolated = run_json(home, "pgd", "--isolate", "--force")
    assert isolated["isolated"] and isolated["audit"]["passed"]
    assert isolated["adversarial"] == plain["adversarial"]
    assert isolated["perturbation"]["linf_mv"] == plain["perturbation"]["linf_mv"]


def test_violating_cells_are_left_out_of_the_pivot_by_default(hostile, home):
    for attack in ("wide", "tone", "patch", "noise"):  # stored already when run after the others
        run_json(home, attack)
    out = invoke("results", "--pivot", "--format", "json", "--home", home)
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    attacks = {r["attack"] for r in view["rows"]}
    assert view["left_out_violations"] >= 3 and not attacks & {"wide", "tone", "negate", "patch"}
    kept = invoke("results", "--pivot", "--include-violations", "--format", "json", "--home", home)
    assert {"wide", "tone"} <= {r["attack"] for r in json.loads(kept.stdout)["rows"]}
