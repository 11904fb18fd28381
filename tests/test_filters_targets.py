"""Core pieces the paper attacks share: zero-phase low-pass and Gaussian smoothing, the SCAR
per-lead budget profile, transfer specs, and the target-class histogram."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ecgarena.constraints import PrecordialProfile, energy_above, precordial_profile
from ecgarena.errors import UserError
from ecgarena.filters import gaussian_kernel, lowpass, samples, smooth
from ecgarena.metrics import fooling, targets
from ecgarena.specs import RunSpec
from ecgarena.testing import signals
from hypothesis import given, settings
from hypothesis import strategies as st

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


@settings(max_examples=50, deadline=None)
@given(x=signals(batch=2, leads=3, time=500), fs=st.sampled_from([100.0, 250.0, 500.0]))
def test_lowpass_is_band_limited_zero_phase_and_leaves_input(x, fs):
    before = x.clone()
    y = lowpass(x, fs, 15.0)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.equal(x, before)
    assert float(energy_above(y, fs, 25.0).max()) <= 0.02 + 1e-9


def test_lowpass_keeps_a_slow_sine_in_place():
    t = torch.arange(5000) / 500.0
    x = torch.sin(2 * torch.pi * 2.0 * t).view(1, 1, -1)
    y = lowpass(x, 500.0, 15.0)
    # zero phase: no delay, and 2 Hz passes (|H|² ≈ 1) away from the edges
    assert torch.allclose(y[..., 500:-500], x[..., 500:-500], atol=1e-3)


def test_lowpass_cutoff_above_nyquist_is_a_user_error():
    with pytest.raises(UserError, match="Nyquist frequency 50 Hz"):
        lowpass(torch.zeros(1, 1, 100), 100.0, 60.0)


@settings(max_examples=50, deadline=None)
@given(window=st.integers(0, 20).map(lambda k: 2 * k + 1), sigma=st.floats(0.3, 20))
def test_gaussian_kernel_is_symmetric_unit_sum_and_keeps_constants(window, sigma):
    k = gaussian_kernel(window, sigma)
    assert len(k) == window and float(k.sum()) == pytest.approx(1.0)
    assert torch.equal(k, k.flip(0)) and (k >= 0).all()
    const = torch.full((1, 2, 64), 0.3)
    assert torch.allclose(smooth(const, k), const, atol=1e-6)  # reflect padding


def test_window_in_ms_scales_with_rate():
    assert samples(50, 500) == 25 and samples(50, 100) == 5 and samples(50, 360) == 19
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(4, 1.0)


def test_precordial_profile_is_the_seed_budget():
    assert precordial_profile(0.2, LEADS, 0.5) == [0.1] * 7 + [0.2] * 5
    assert precordial_profile(0.2, ("MLII",), 0.5) == [0.2]
    assert PrecordialProfile(profile="uniform").expand_budget(0.2, LEADS) == 0.2
    assert PrecordialProfile().expand_budget(0.2, ("MLII",)) == 0.2  # uniform: stays scalar
    assert PrecordialProfile(other_ratio=0.25).expand_budget(0.4, LEADS)[:7] == [0.1] * 7


def test_transfer_spec_and_its_source():
    spec = RunSpec(model="conv-vit", source_model="cnn", model_params={"dim": 32})
    src = spec.source()
    assert spec.transfer and src.model == "cnn" and src.defense == "none"
    assert src.model_params == {} and not src.transfer
    same = RunSpec(model="cnn", source_model="cnn")
    assert not same.transfer
    defended = RunSpec(defense="pgd-at", source_defense="none")
    assert defended.transfer and defended.source().defense == "none"
    assert spec.key() != RunSpec(model="conv-vit", model_params={"dim": 32}).key()
    wide = RunSpec(model="cnn", source_model="resnet1d18", source_model_params={"width": 8})
    assert wide.source().model_params == {"width": 8} and wide.transfer


def test_source_options_without_a_source_are_refused():
    with pytest.raises(ValueError, match="source_model_params .* without source_model"):
        RunSpec(source_model_params={"width": 8})
    with pytest.raises(ValueError, match="without source_defense"):
        RunSpec(source_defense_params={"eps_mv": 0.1})


def test_targets_multilabel_counts_gained_and_lost_labels():
    classes = ("CD", "HYP", "MI", "NORM", "STTC")
    clean = np.array([[-1, -1, -1, 2, -1], [-1, -1, -1, 2, -1], [1, -1, -1, -1, -1.0]])
    adv = np.array([[-1, -1, 3, -2, -1], [-1, -1, 3, 2, -1], [1, -1, -1, -1, -1.0]])
    out = targets(clean, adv, "multilabel", classes)
    assert out["n_changed"] == 2 and out["gained"]["MI"] == 2 and out["lost"]["NORM"] == 1
    assert out["top_class"] == "MI" and out["top_share"] == 1.0


def test_targets_multiclass_and_no_change():
    clean = np.eye(3)[[0, 0, 1, 2]] * 5
    adv = np.eye(3)[[2, 2, 1, 1]] * 5
    out = targets(clean, adv, "multiclass", ("N", "A", "O"))
    assert out["into"] == {"N": 0, "A": 1, "O": 2} and out["top_class"] == "O"
    none = targets(clean, clean, "multiclass", ("N", "A", "O"))
    assert none["n_changed"] == 0 and none["top_class"] is None


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_fooling_rate_of_zero_perturbation_is_zero(seed):
    logits = np.random.default_rng(seed).normal(size=(20, 5))
    y = (np.random.default_rng(seed + 1).random((20, 5)) > 0.5).astype(np.float32)
    out = fooling(logits, logits, y, "multilabel")
    assert out["flip_rate"] == 0.0
    assert out["fooling_rate"] == 0.0 or np.isnan(out["fooling_rate"])  # nan: none correct
