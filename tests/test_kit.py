"""`ecgarena.testing.check_attack` runs the engine's path: the default budget, the contract
(`expand_budget` included), one `run_audited` call, the report merge rule; a real cell and the
kit give the same threat, δ and report for the same seed and records."""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import ecgarena
import numpy as np
import pytest
import torch
from ecgarena.artifacts import read_tensors
from ecgarena.cell import DEFAULT_EPS_MV, run_cell
from ecgarena.host import Host
from ecgarena.resources import Resources, resolve_device
from ecgarena.specs import RunSpec, TrainSpec
from ecgarena.testing import check_attack

SMALL = {"dataset_params": {"n_records": 300}, "train": TrainSpec(epochs=1)}


class SignAttack:
    """A seeded sign attack that records the threat it is given and who called it."""

    name: ClassVar[str] = "sign"
    calls: ClassVar[list[dict[str, Any]]] = []

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(budget_mv=budget_mv)

    def run(
        self,
        classifier: ecgarena.Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ecgarena.ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> ecgarena.Attacked:
        caller = inspect.stack()[1]
        SignAttack.calls.append({"threat": threat, "caller": (caller.function, caller.filename)})
        noise = torch.randn(x.shape, generator=ctx.generator, device=ctx.generator.device)
        delta = ecgarena.lead_budget(threat, x.shape[1], x) * noise.sign()
        return ecgarena.Attacked(delta, {"records": len(x), "warnings": ["recorded"]})


class RecordingAttack(SignAttack):
    """The sign attack with its own default budget."""

    name: ClassVar[str] = "recording"
    default_eps_mv: ClassVar[float] = 0.07


class ProfiledAttack(SignAttack):
    """The sign attack without a default budget (the core's) and a per-lead profile."""

    name: ClassVar[str] = "profiled"

    def expand_budget(self, eps_mv: float, leads: tuple[str, ...]) -> list[float]:
        return [eps_mv / 2] + [eps_mv] * (len(leads) - 1)


@pytest.fixture(scope="module")
def host() -> Host:
    h = Host()
    mod = types.ModuleType("fake_recording")

    @ecgarena.hookimpl
    def ecgarena_register_attacks(register):
        register(RecordingAttack)

    mod.ecgarena_register_attacks = ecgarena_register_attacks
    sys.modules["fake_recording"] = mod
    h.add(mod, "recording")
    return h


def _through_run_audited(call: dict[str, Any]) -> bool:
    function, filename = call["caller"]
    return function == "run_audited" and filename.endswith("attack_call.py")


def test_check_attack_uses_the_default_budget_and_expand_budget():
    x = torch.randn(3, 2, 40)
    assert check_attack(RecordingAttack(), x).threat.budget_mv == 0.07
    profiled = check_attack(ProfiledAttack(), x)
    assert profiled.threat.budget_mv == [DEFAULT_EPS_MV / 2, DEFAULT_EPS_MV]
    assert check_attack(ProfiledAttack(), x, 0.2).threat.budget_mv == [0.1, 0.2]
    assert profiled.audit.passed and profiled.attack_report == {
        "records": 3,
        "warnings": ["recorded"],
    }


def test_check_attack_and_a_cell_share_run_audited_threat_delta_and_report(host, tmp_path):
    SignAttack.calls.clear()
    spec = RunSpec(attack="recording", **SMALL)
    res = Resources(host, tmp_path)
    cell = run_cell(spec, res)
    (engine,) = SignAttack.calls
    assert _through_run_audited(engine)
    assert cell.threat == engine["threat"].model_dump(mode="json")
    assert cell.threat["budget_mv"] == 0.07  # the attack's default budget, not the core's

    resolved = spec.model_copy(update={"eps": 0.07})
    info, test = res.evaluation(resolved)
    clf = res.classifier(resolved, resolve_device(spec.device))[0]
    x, y = torch.from_numpy(np.array(test.x, np.float32)), torch.from_numpy(np.array(test.y))
    kit = check_attack(
        RecordingAttack(),
        x,
        classifier=clf,
        fs=info.fs,
        task=info.task,
        n_classes=len(info.classes),
        seed=spec.seed,
        y=y,
        leads=info.leads,
    )
    assert _through_run_audited(SignAttack.calls[1])
    assert kit.threat.model_dump(mode="json") == cell.threat
    stored = read_tensors(Path(cell.artifact))[0]["delta"]  # the cell's δ of its first records
    assert torch.equal(kit.delta[: len(stored)], stored)
    assert kit.attack_report == cell.attack_report == {"records": len(x), "warnings": ["recorded"]}
    assert "recording: recorded" in cell.warnings
    assert kit.audit.passed and cell.audit.passed
