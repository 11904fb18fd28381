"""An attack's report is returned (`ecgarena.Attacked`), checked to be a JSON dict, kept per
batch call and merged by the attack's own `merge_reports` rule, in process and with
`--isolate`; its warnings reach the cell."""

from __future__ import annotations

import sys
import types
from typing import Any, ClassVar

import ecgarena
import numpy as np
import pytest
import torch
from ecgarena.attack_call import merged_report, unpack
from ecgarena.cell import run_cell
from ecgarena.host import Host
from ecgarena.resources import Resources
from ecgarena.specs import ATTACK_BATCH, RunSpec, TrainSpec
from ecgarena.testing import check_attack

TWO_BATCHES = {"dataset_params": {"n_records": 1400}, "train": TrainSpec(epochs=1)}  # 140 test


class ListingAttack:
    """δ = 0 with a report of this call's records, and no merge rule: kept per batch."""

    name: ClassVar[str] = "listing"

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(budget_mv=budget_mv)

    def report(self, x: torch.Tensor) -> Any:
        """This call's report: its records, and a warning on a short batch."""
        warnings = ["a short batch"] if len(x) < ATTACK_BATCH else []
        return {"records": len(x), "warnings": warnings}

    def run(
        self,
        classifier: ecgarena.Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ecgarena.ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> ecgarena.Attacked:
        return ecgarena.Attacked(torch.zeros_like(x), self.report(x))


class CountingAttack(ListingAttack):
    """The same reports, summed by the attack's merge rule."""

    name: ClassVar[str] = "counting"

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Records summed over the batch calls; warnings pooled."""
        return {
            "records": sum(r["records"] for r in reports),
            "batches": len(reports),
            "warnings": [w for r in reports for w in r["warnings"]],
        }


class StatefulAttack(ListingAttack):
    """A merge rule that is an instance method (it could read instance state): refused."""

    name: ClassVar[str] = "stateful"

    def merge_reports(self, reports: list[dict[str, Any]]) -> dict[str, Any]:
        return reports[0]


class ReportingAttack(ListingAttack):
    """Returns the report it was built with, whatever it is."""

    name: ClassVar[str] = "reporting"

    def __init__(self, fixed: Any) -> None:
        self.fixed = fixed

    def report(self, x: torch.Tensor) -> Any:
        return self.fixed


@pytest.fixture(scope="module")
def host() -> Host:
    h = Host()
    mod = types.ModuleType("fake_reporting")

    @ecgarena.hookimpl
    def ecgarena_register_attacks(register):
        register(CountingAttack)
        register(ListingAttack)

    mod.ecgarena_register_attacks = ecgarena_register_attacks
    sys.modules["fake_reporting"] = mod
    h.add(mod, "reporting")
    return h


def test_a_bare_delta_has_no_report_and_attacked_unpacks():
    delta = torch.zeros(2, 2, 8)
    assert unpack("a", delta) == (delta, None)
    out, report = unpack("a", ecgarena.Attacked(delta, {"n": (1, 2)}))
    assert out is delta and report == {"n": [1, 2]}  # a JSON copy
    with pytest.raises(ecgarena.PluginError, match=r"'a' returned ndarray.*Attacked"):
        unpack("a", np.zeros((2, 2, 8)))


@pytest.mark.parametrize(
    "report, says",
    [
        ([1, 2], "not a JSON dict \\(got list\\)"),
        ({"v": np.float32(1.0)}, "not a JSON dict.*float32"),
        ({"v": torch.ones(1)}, "not a JSON dict.*Tensor"),
        ({"warnings": "one"}, "warnings are one; use a list of strings"),
        ({"warnings": [1]}, r"warnings are \[1\]; use a list of strings"),
    ],
)
def test_a_report_that_is_not_a_json_dict_is_a_one_line_plugin_error(report, says):
    with pytest.raises(ecgarena.PluginError, match=f"attack 'reporting': .*{says}") as e:
        check_attack(ReportingAttack(report), torch.randn(2, 2, 16), 0.1)
    assert "\n" not in str(e.value)


def test_merge_rules_declared_default_and_refused():
    one, two = {"records": 3, "warnings": ["w"]}, {"records": 4, "warnings": ["w", "v"]}
    assert merged_report(CountingAttack(), [None, None]) is None
    assert merged_report(CountingAttack(), [one, two]) == {
        "records": 7,
        "batches": 2,
        "warnings": ["w", "w", "v"],
    }
    assert merged_report(ListingAttack(), [one]) == one
    assert merged_report(ListingAttack(), [one, two]) == {
        "batches": [one, two],
        "warnings": ["w", "v"],
    }
    with pytest.raises(ecgarena.PluginError, match="'stateful'.merge_reports is function"):
        merged_report(StatefulAttack(), [one, two])


@pytest.mark.parametrize("name", ["counting", "listing"])
def test_a_cell_merges_one_report_per_batch_call_and_shows_its_warnings(host, tmp_path, name):
    cell = run_cell(RunSpec(attack=name, eps=0.05, **TWO_BATCHES), Resources(host, tmp_path))
    first, rest = ATTACK_BATCH, 140 - ATTACK_BATCH
    if name == "counting":
        assert cell.attack_report == {
            "records": 140,
            "batches": 2,
            "warnings": ["a short batch"],
        }
    else:
        assert [b["records"] for b in cell.attack_report["batches"]] == [first, rest]
    assert f"{name}: a short batch" in cell.warnings


def test_isolated_cells_return_the_same_merged_report(tmp_path):
    """`--isolate`: the child returns one report per batch; the parent checks and merges them."""
    options = {"steps": 3, "search_steps": 1}
    spec = RunSpec(attack="cw-l2", eps=0.5, attack_params=options, **TWO_BATCHES)
    plain = run_cell(spec, Resources(ecgarena.Host(), tmp_path))
    isolated = run_cell(spec, Resources(ecgarena.Host(), tmp_path, isolate=True))
    assert isolated.isolated and plain.attack_report["records"] == 140
    assert isolated.attack_report == plain.attack_report
