"""Every registered model and defense end to end: training on the toy FitContext, honest
metadata, clear errors for the wrong model, and certified runs through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ecgarena import Host, UserError
from ecgarena.cli import app
from ecgarena.testing import toy_fit_context
from typer.testing import CliRunner

TIME = 48
MODELS = {"mart": "cnn", "trades": "cnn", "cas": "caslcnet", "caslcnet": "caslcnet"}
SMALL = ["--dataset-opt", "n_records=60", "--dataset-opt", "duration_s=2", "--epochs", "1"]


@pytest.fixture(scope="module")
def host() -> Host:
    return Host()


def context(host: Host, model: str, options: dict | None = None, **kw):
    built = host.create("models", model, options or {})
    return toy_fit_context(n=32, time=TIME, build_net=lambda: built.build(2, TIME, 2), **kw)


@pytest.mark.parametrize("defense", sorted(MODELS))
def test_training_defenses_train_end_to_end(host, defense):
    ctx = context(host, MODELS[defense], {"width": 4})
    d = host.create("defenses", defense, {"steps": 2, "eps_mv": 0.1})
    clf = d.build(ctx)
    summary = d.train(clf, ctx)
    assert summary["epochs_run"] >= 1 and np.isfinite(summary["history"][0]["loss"])
    assert (
        not clf.info.certifies
        and clf.info.deterministic
        and f"{defense} training" in (clf.info.notes)
    )
    # the default inner step: ε/4 (MART/TRADES/CAS references), ε/10 for CASLCNet (the paper)
    assert d.step == pytest.approx(0.01 if defense == "caslcnet" else 0.025)


def test_linf_dist_trains_certifies_and_deploys_at_p_inf(host):
    ctx = context(host, "linf-dist-net", {"width": 8, "hidden": 32}, epochs=2)
    d = host.create("defenses", "linf-dist", {"train_eps_mv": 0.1, "eps_mv": 0.03})
    clf = d.build(ctx)
    assert clf.info.certifies and isinstance(clf.preprocess, torch.nn.Identity)
    summary = d.train(clf, ctx)
    ps = [h["p"] for h in summary["history"]]
    assert ps[0] >= 8 and ps == sorted(ps)
    assert set(summary["val_certified_accuracy"]) == {"0.03", "0.1"}
    pred, radius = clf.certify(torch.as_tensor(ctx.val.x))
    assert pred.shape == (32,) and (radius >= 0).all() and not clf.training


def test_linf_dist_trains_a_fixed_count_not_the_early_stopping_cap(host):
    """TrainSpec.epochs is an early-stopping cap (100 by default): linf-dist, which trains
    every epoch, takes at most 8 of them unless its own `epochs` says otherwise."""
    import dataclasses

    from ecgarena import TrainSpec

    ctx = context(host, "linf-dist-net", {"width": 8, "hidden": 32})
    default = dataclasses.replace(ctx, train_spec=TrainSpec())
    assert host.create("defenses", "linf-dist", {}).training_epochs(default) == 8
    assert host.create("defenses", "linf-dist", {}).training_epochs(ctx) == 2  # toy: epochs=2
    d = host.create("defenses", "linf-dist", {"epochs": 3})
    assert d.training_epochs(default) == 3
    summary = d.train(d.build(ctx), ctx)
    assert summary["epochs_run"] == 3 and len(summary["history"]) == 3


@pytest.mark.parametrize(
    ("defense", "model", "needs"),
    [
        ("cas", "cnn", "caslcnet"),
        ("caslcnet", "cnn", "caslcnet"),
        ("linf-dist", "cnn", "linf-dist-net"),
    ],
)
def test_defenses_name_the_model_they_need(host, defense, model, needs):
    with pytest.raises(UserError, match=f"needs model '{needs}'.*got a CNN"):
        host.create("defenses", defense, {}).build(context(host, model))


def test_linf_dist_rejects_an_empty_ramp(host):
    d = host.create("defenses", "linf-dist", {"ramp_start": 0.5, "ramp_end": 0.4})
    with pytest.raises(UserError, match="ramp_end 0.4 must exceed ramp_start 0.5"):
        d.build(context(host, "linf-dist-net"))


def run_cli(home, *args: str) -> dict:
    result = CliRunner().invoke(app, ["run", *args, "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_certified_linf_dist_run_on_synthetic(tmp_path):
    out = run_cli(
        tmp_path,
        *("--attack", "pgd", "--model", "linf-dist-net", "--defense", "linf-dist"),
        *("--dataset", "synthetic", "--max-records", "6", "--model-opt", "width=8"),
        *SMALL,
    )
    cert = out["certification"]
    assert cert["n"] == 6 and cert["abstain_rate"] == 0
    assert cert["norm"] == "linf" and cert["forward_passes_per_record"] == 1
    curve = list(cert["certified_accuracy"].values())
    assert curve == sorted(curve, reverse=True) and curve[0] == cert["accuracy"]
    assert out["classifier"]["certifies"] and out["audit"]["passed"]


def test_cli_caslcnet_run_on_synthetic(tmp_path):
    out = run_cli(
        tmp_path,
        *("--attack", "fgsm", "--model", "caslcnet", "--defense", "caslcnet"),
        *("--max-records", "6", "--model-opt", "width=4", "--defense-opt", "steps=1"),
        *SMALL,
    )
    assert out["audit"]["passed"] and out.get("certification") is None
    assert not any("NaN" in w or "gradient is zero" in w for w in out["warnings"])
