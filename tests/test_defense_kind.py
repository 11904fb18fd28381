"""`Defense.kind` is validated at registration (tests/test_capabilities.py) and used: every
cell records it, and a classifier that contradicts it is a warning with the cell."""

from __future__ import annotations

import pytest
import torch
from ecgarena import Classifier, ClassifierInfo
from ecgarena.checks import kind_warnings
from ecgarena.host import get_host
from ecgarena.testing import TinyNet, toy_fit_context

DEFENSES = get_host().names("defenses")
MODEL_OF = {"cas": "caslcnet", "caslcnet": "caslcnet", "linf-dist": "linf-dist-net"}  # needed


@pytest.mark.parametrize("name", DEFENSES)
def test_every_first_party_defense_builds_what_its_kind_says(name):
    cls = get_host().get("defenses", name).cls
    defense = get_host().create("defenses", name, {})
    model = get_host().create("models", MODEL_OF.get(name, "cnn"), {})
    clf = defense.build(toy_fit_context(time=64, build_net=lambda: model.build(2, 64, 2)))
    assert kind_warnings(cls.kind, clf) == []


def test_a_classifier_that_contradicts_its_kind_is_named():
    plain = Classifier(TinyNet(2, 3))
    assert kind_warnings("certified", plain) == [
        "defense kind 'certified' but it built a classifier without a certificate "
        "(info.certifies is False)"
    ]
    assert "without `members`" in kind_warnings("ensemble", plain)[0]
    smoothed = Classifier(TinyNet(2, 3), preprocess=torch.nn.AvgPool1d(3, 1, 1))
    assert kind_warnings("none", smoothed) == [
        "defense kind 'none' but it built a classifier that preprocesses (AvgPool1d)"
    ]
    assert kind_warnings("preprocessing", smoothed) == []
    assert kind_warnings("training", plain) == []
    certified = Classifier(TinyNet(2, 3), info=ClassifierInfo(certifies=False))
    assert kind_warnings("certified", certified)  # certifies=False: still named


def test_the_cell_records_the_defense_kind(tmp_path):
    from ecgarena.cell import run_cell
    from ecgarena.resources import Resources
    from ecgarena.specs import RunSpec, TrainSpec

    spec = RunSpec(
        attack="fgsm",
        defense="median",
        dataset_params={"n_records": 300},
        train=TrainSpec(epochs=1),
        max_attack_records=8,
    )
    result = run_cell(spec, Resources(get_host(), tmp_path))
    assert result.classifier["defense_kind"] == "preprocessing"
    assert not any("defense kind" in w for w in result.warnings)
