"""CPR (METHODS.md §9): the physiological mask's invariants, R peaks on a real record, the
network's single-pass inference, the loss terms, and every ablation variant training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ecgarena import Host
from ecgarena.testing import toy_fit_context
from ecgarena_cpr import masked_reconstruction, orthogonality
from ecgarena_cpr.masks import masks_for, physiological_mask, r_peaks
from ecgarena_cpr.model import CPRNet
from hypothesis import given, settings
from hypothesis import strategies as st

FS = st.sampled_from([100.0, 250.0, 360.0, 500.0])


@settings(max_examples=200, deadline=None)
@given(fs=FS, rr_s=st.floats(0.3, 2.0), offset=st.floats(0, 1), seconds=st.integers(3, 12))
def test_mask_is_binary_covers_every_qrs_and_is_deterministic(fs, rr_s, offset, seconds):
    n = int(seconds * fs)
    peaks = np.arange(offset * rr_s * fs, n, rr_s * fs).astype(np.int64)
    mask = physiological_mask(n, fs, peaks)
    assert mask.shape == (n,) and set(np.unique(mask)) <= {0.0, 1.0}
    half = int(np.ceil(0.05 * fs))
    for r in peaks:
        assert mask[max(r - half, 0) : min(r + half + 1, n)].all()
    assert np.array_equal(mask, physiological_mask(n, fs, peaks))


def test_no_peaks_means_no_prior_and_coverage_grows_with_heart_rate():
    assert physiological_mask(500, 100.0, np.zeros(0, np.int64)).all()
    coverage = [
        physiological_mask(5000, 500.0, np.arange(100, 5000, int(rr * 500))).mean()
        for rr in (1.5, 1.0, 0.6)
    ]
    assert coverage[0] < coverage[1] < coverage[2]


def test_r_peaks_of_a_synthetic_rhythm_at_100_hz():
    fs, rr = 100.0, 0.8
    t = np.arange(1000) / fs
    beats = np.arange(0.4, 10, rr)
    sig = sum(1.2 * np.exp(-((t - b) ** 2) / (2 * 0.012**2)) for b in beats)
    found = r_peaks(sig, fs)
    assert len(found) == pytest.approx(len(beats), abs=1)
    assert np.abs(found[:, None] / fs - beats[None]).min(axis=1).max() < 0.03


def test_r_peaks_on_a_real_ptbxl_record():
    root = Path(os.environ.get("ECGARENA_TEST_DATA", Path(__file__).parents[4] / "shared" / "data"))
    path = root / "ptbxl" / "records100" / "00000" / "00001_lr"
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"real data {path} is absent (set ECGARENA_TEST_DATA)")
    import wfdb

    sig = wfdb.rdrecord(str(path)).p_signal[:, 1]
    peaks = r_peaks(sig, 100.0)
    assert 6 <= len(peaks) <= 20  # 10 s of sinus rhythm
    assert 0.3 < np.median(np.diff(peaks)) / 100 < 1.6


def test_masks_are_cached(tmp_path):
    x = np.random.default_rng(0).normal(0, 0.1, (3, 2, 300)).astype(np.float32)
    first = masks_for(x, ("I", "II"), 100.0, tmp_path)
    assert first.shape == (3, 1, 300) and len(list((tmp_path / "cpr-masks").iterdir())) == 1
    assert np.array_equal(first, masks_for(x, ("I", "II"), 100.0, tmp_path))


def test_inference_is_one_pass_through_the_content_encoder_and_head():
    net = CPRNet(2, 128, 3, latent=8, width=4).eval()
    calls = []
    for name in ("content", "style", "decoder", "head"):
        getattr(net, name).register_forward_hook(lambda *_, n=name: calls.append(n))
    out = net(torch.randn(5, 2, 128))
    assert out.shape == (5, 3) and calls == ["content", "head"]
    z = torch.randn(5, 16)
    assert net.decoder(z).shape == (5, 2, 128)


def test_loss_terms():
    x = torch.randn(4, 2, 50)
    mask = (torch.rand(4, 1, 50) > 0.5).float()
    assert float(masked_reconstruction(x, x, x, mask, 0.1)) == 0.0
    assert float(masked_reconstruction(x, x + 1, x + 5, mask, 0.0)) == pytest.approx(1.0)
    both = masked_reconstruction(x, x + 1, x + 2, mask, 0.5)  # 1 inside M, 0.5 × 4 outside
    assert float(both) == pytest.approx(3.0)
    assert float(masked_reconstruction(x, x + 1, None, mask, 0.5)) == pytest.approx(1.0)
    z = torch.randn(8, 6)
    assert float(orthogonality(z, torch.zeros(8, 6))) == pytest.approx(0.0)
    assert float(orthogonality(z, z)) > 0


@pytest.mark.parametrize("variant", ["full", "no-consistency", "naive", "resnet-mask"])
def test_every_variant_trains(variant, tmp_path):
    defense = Host().create("defenses", "cpr", {"variant": variant, "latent": 8, "width": 4})
    ctx = toy_fit_context(
        n=24, time=128, build_net=lambda: None, epochs=1, batch_size=8, cache_dir=tmp_path
    )
    clf = defense.build(ctx)
    summary = defense.train(clf, ctx)
    assert summary["epochs_run"] == 1 and 0 < summary["mask_coverage"] <= 1
    assert clf.info.forward_passes == 1
