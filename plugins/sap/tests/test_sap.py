"""SAP (METHODS.md §1): the kernel bank and its scaling rule, the smoothing operator S, and the
attack against the core's audit, its smoothness bound and zero-padding handling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ecgarena import DatasetInfo, Host, per_sample_loss, pgd
from ecgarena.testing import budgets, check_attack, signals, tiny_classifier
from ecgarena_sap import SAPAttack
from ecgarena_sap.smoothing import (
    SIGMAS,
    SIZES,
    kernel_bank,
    mean_kernel,
    odd,
    padding_mask,
    scaled_size,
    smooth,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

HOST = Host(builtins=False)
RATES = st.sampled_from([100.0, 250.0, 300.0, 360.0, 500.0])


def _info(leads: int, time: int, fs: float, task: str = "multiclass") -> DatasetInfo:
    return DatasetInfo("t", task, ("a", "b", "c"), tuple(f"L{i}" for i in range(leads)), fs, time)


def _run(attack, x, budget, fs, seed=0, clf=None, y=None):
    """The attack run as the engine runs it (`check_attack`): δ, the audit, the threat model."""
    done = check_attack(attack, x, budget, clf, fs, seed=seed, y=y)
    return done.delta, done.audit, done.threat


def _total_variation(kernel: torch.Tensor) -> float:
    """Σ|Δw̄| of the kernel with its zero padding (both ends included)."""
    return float(F.pad(kernel, (1, 1)).diff().abs().sum())


# --- kernel bank -------------------------------------------------------------------------


def test_registered_and_default_bank_at_300_hz():
    assert isinstance(HOST.create("attacks", "sap"), SAPAttack)
    bank = kernel_bank(300.0)
    assert len(bank) == 25
    assert {len(w) for w in bank} == {5, 7, 11, 15, 19}
    for j, w in enumerate(bank):
        size, sigma = SIZES[j // len(SIGMAS)], SIGMAS[j % len(SIGMAS)]
        assert len(w) == size and len(w) % 2 == 1
        assert torch.all(w >= 0) and float(w.sum()) == pytest.approx(1.0, abs=1e-12)
        i = torch.arange(size, dtype=torch.float64) - size // 2
        ref = torch.exp(-(i**2) / (2 * sigma**2))
        assert torch.allclose(w, ref / ref.sum(), atol=1e-15)
        assert torch.equal(w, w.flip(0))  # symmetric
    assert len(mean_kernel(bank)) == 19


@settings(max_examples=60, deadline=None)
@given(fs=st.floats(30.0, 2000.0), min_taps=st.sampled_from([1, 3, 5]))
def test_bank_scaling_rule_keeps_durations(fs, min_taps):
    scale = fs / 300.0
    bank = kernel_bank(fs, min_taps=min_taps)
    assert len(bank) == 25
    for j, w in enumerate(bank):
        size, sigma = SIZES[j // len(SIGMAS)], SIGMAS[j % len(SIGMAS)]
        n = len(w)
        assert n % 2 == 1 and n >= min_taps
        assert n == scaled_size(size, fs, min_taps) == max(odd(size * scale), min_taps)
        if n > min_taps:  # not raised by the floor: round-to-odd, no odd integer is closer
            assert abs(n - size * scale) <= 1.0 + 1e-9
            assert all(
                abs(m - size * scale) >= abs(n - size * scale) - 1e-9 for m in (n - 2, n + 2)
            )
        assert torch.all(w >= 0) and float(w.sum()) == pytest.approx(1.0, abs=1e-12)
        i = torch.arange(n, dtype=torch.float64) - n // 2
        ref = torch.exp(-(i**2) / (2 * (sigma * scale) ** 2))
        assert torch.allclose(w, ref / ref.sum(), atol=1e-12)
    k = mean_kernel(bank)
    assert len(k) % 2 == 1 and torch.all(k >= 0)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-12)


def _gain(kernel: torch.Tensor, fs: float, hz: float) -> float:
    """|H(f)| of the symmetric kernel (a cosine sum), measured on a tone: RMS out / RMS in
    away from the zero-padded ends."""
    t = torch.arange(4000, dtype=torch.float64) / fs
    tone = torch.sin(2 * torch.pi * hz * t).view(1, 1, -1)
    out = smooth(tone, kernel)[..., 100:-100]
    return float(out.pow(2).mean().sqrt() / tone[..., 100:-100].pow(2).mean().sqrt())


def test_kernel_taps_at_100_300_500_hz():
    attack = SAPAttack()
    assert attack.kernel_taps(300.0) == [5, 7, 11, 15, 19]  # the paper's sizes, unchanged
    assert attack.kernel_taps(100.0) == [3, 3, 3, 5, 7]  # 5 → 1 tap without the 3-tap floor
    assert attack.kernel_taps(500.0) == [9, 11, 19, 25, 31]
    assert SAPAttack(min_taps=1).kernel_taps(100.0) == [1, 3, 3, 5, 7]  # the plain rescaling
    moot = zip(kernel_bank(300.0, min_taps=1), kernel_bank(300.0), strict=True)
    assert all(torch.equal(a, b) for a, b in moot)  # at 300 Hz the floor changes nothing
    assert scaled_size(1, 100.0) == 1  # a kernel given as 1 tap is never raised by the floor
    with pytest.raises(ValueError, match="odd"):
        SAPAttack(min_taps=4)


def test_at_100_hz_every_kernel_has_three_taps_and_40_hz_is_attenuated_as_at_300_hz():
    """Without the floor the five size-5 kernels are identities at 100 Hz and S keeps 32 % of
    a 40 Hz tone (22 % at 300 Hz); with every kernel ≥ 3 taps it keeps 14 %."""
    assert min(len(w) for w in kernel_bank(100.0)) >= 3
    at_300 = _gain(SAPAttack().kernel(300.0), 300.0, 40.0)
    at_100 = _gain(SAPAttack().kernel(100.0), 100.0, 40.0)
    plain = _gain(SAPAttack(min_taps=1).kernel(100.0), 100.0, 40.0)
    assert at_300 == pytest.approx(0.220, abs=0.005)
    assert at_100 == pytest.approx(0.142, abs=0.005)
    assert plain == pytest.approx(0.322, abs=0.005)
    assert at_100 <= at_300 < plain  # the old rescaling fails this bound


def test_report_lists_the_taps_used():
    x = torch.randn(2, 2, 100, generator=torch.Generator().manual_seed(0))
    attack = SAPAttack(pgd_steps=1, steps=1)
    done = check_attack(attack, x, 0.05, fs=100.0)
    assert done.audit.passed, done.audit.violations
    report = done.attack_report
    assert report["kernel_taps"] == [3, 3, 3, 5, 7] and report["min_taps"] == 3
    assert report["fs_hz"] == 100.0 and report["reference_fs_hz"] == 300.0


@pytest.mark.parametrize("fs", [100.0, 300.0, 360.0, 500.0])
def test_mean_kernel_equals_mean_of_the_25_convolutions(fs):
    bank = kernel_bank(fs)
    theta = torch.randn(3, 2, 97, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    flat = theta.reshape(6, 1, 97)
    each = [F.conv1d(flat, w.view(1, 1, -1), padding=len(w) // 2) for w in bank]
    expected = torch.stack(each).mean(0).reshape(theta.shape)
    got = smooth(theta, mean_kernel(bank))
    assert got.shape == theta.shape
    assert torch.allclose(got, expected, atol=1e-13)
    # S is linear and symmetric (<Sa, b> = <a, Sb>), and keeps a constant interior
    k = mean_kernel(bank)
    a, b = torch.randn(2, *theta.shape, dtype=torch.float64).unbind(0)
    assert torch.allclose(smooth(2 * a - 3 * b, k), 2 * smooth(a, k) - 3 * smooth(b, k))
    assert float((smooth(a, k) * b).sum()) == pytest.approx(float((a * smooth(b, k)).sum()))
    const = smooth(torch.full((1, 1, 97), 0.7, dtype=torch.float64), k)
    half = len(k) // 2
    assert torch.allclose(const[..., half:-half], torch.tensor(0.7, dtype=torch.float64))


@settings(max_examples=80, deadline=None)
@given(theta=signals(batch=2, leads=3, time=64), fs=RATES, scale=st.floats(1e-3, 10.0))
def test_smoothing_never_grows_the_peak(theta, fs, scale):
    theta = theta * scale
    out = smooth(theta, mean_kernel(kernel_bank(fs)))
    peak_in, peak_out = theta.abs().amax(-1), out.abs().amax(-1)
    assert torch.all(peak_out <= peak_in * (1 + 1e-6) + 1e-12)


# --- the attack against the audit ----------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    x=signals(batch=2, leads=2, time=128),
    budget=budgets(2, max_mv=0.5),
    fs=RATES,
    seed=st.integers(0, 100),
)
def test_sap_passes_core_audit(x, budget, fs, seed):
    audit = check_attack(SAPAttack(pgd_steps=5, steps=10), x, budget, fs=fs, seed=seed).audit
    assert audit.passed, audit.violations


@settings(max_examples=25, deadline=None)
@given(
    x=signals(batch=3, leads=3, time=128),
    budget=budgets(3, max_mv=0.5),
    fs=RATES,
    seed=st.integers(0, 100),
)
def test_sap_budget_shape_and_smoothness_bound(x, budget, fs, seed):
    attack = SAPAttack()
    x_copy = x.clone()
    delta, report, threat = _run(attack, x, budget, fs, seed)
    assert report.passed, report.violations
    assert torch.equal(x, x_copy)
    assert delta.shape == x.shape and delta.dtype == x.dtype and delta.device == x.device
    eps = torch.tensor(threat.lead_budgets(3))
    assert torch.all(delta.abs().amax(dim=(0, 2)) <= eps + 1e-6)
    # δ = w̄ ⋆ θ (zero padded), so δ[t+1] − δ[t] = Σ_m θ[t+m−c]·(w̄[m−1] − w̄[m]) with w̄ zero
    # outside its support; |θ| ≤ ε per lead gives |δ[t+1] − δ[t]| ≤ ε·Σ_m |w̄[m] − w̄[m−1]|.
    # (x has no exact zeros here, so no padding is masked.)
    tv = _total_variation(attack.kernel(fs))
    jumps = delta.diff(dim=-1).abs().amax(dim=(0, 2))
    assert torch.all(jumps <= eps * tv + 1e-6), (jumps, eps * tv)


@settings(max_examples=10, deadline=None)
@given(x=signals(batch=4, leads=2, time=128), fs=RATES, seed=st.integers(0, 100))
def test_sign_pgd_is_rougher_than_sap(x, fs, seed):
    clf = tiny_classifier(2, 3, seed)
    y = torch.randint(0, 3, (4,), generator=torch.Generator().manual_seed(seed))
    attack = SAPAttack()
    delta, report, threat = _run(attack, x, 0.1, fs, seed, clf=clf, y=y)
    assert report.passed, report.violations
    rough = pgd(clf, x, y, threat, "multiclass", steps=20, step_size=0.1, random_start=False)

    def tv(d):
        return d.diff(dim=-1).abs().sum(dim=(1, 2))

    # Where the gradient's sign never changes along time, sign-PGD gives a constant δ (TV 0)
    # while S(θ) tapers towards its zero-padded ends; compare on the records where PGD moves.
    moving = tv(rough) > 0
    assume(bool(moving.any()))
    assert torch.all(tv(rough)[moving] > tv(delta)[moving]), (tv(rough), tv(delta))


@pytest.mark.parametrize("budget", [0.0, [0.0, 0.0]])
def test_zero_budget_gives_zero_perturbation(budget):
    x = torch.randn(3, 2, 100, generator=torch.Generator().manual_seed(0))
    delta, report, _ = _run(SAPAttack(), x, budget, 300.0)
    assert report.passed, report.violations
    assert torch.count_nonzero(delta) == 0


def test_sap_is_deterministic_and_raises_the_loss():
    gen = torch.Generator().manual_seed(1)
    clf, x = tiny_classifier(2, 3, seed=1), torch.randn(16, 2, 128, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    d1, report, _ = _run(SAPAttack(), x, 0.1, 300.0, clf=clf, y=y)
    d2, _, _ = _run(SAPAttack(), x, 0.1, 300.0, clf=clf, y=y)
    assert report.passed, report.violations
    assert torch.equal(d1, d2)
    with torch.no_grad():
        clean = per_sample_loss(clf(x), y, "multiclass").mean()
        attacked = per_sample_loss(clf(x + d1), y, "multiclass").mean()
    assert attacked > clean


# --- zero padding --------------------------------------------------------------------------


def _expected_mask(x: torch.Tensor) -> torch.Tensor:
    """Oracle: per record, the leading and trailing runs of all-lead-zero columns."""
    out = torch.zeros(x.shape[0], 1, x.shape[2], dtype=torch.bool)
    for b in range(x.shape[0]):
        zero = [bool((x[b, :, t] == 0).all()) for t in range(x.shape[2])]
        t = 0
        while t < len(zero) and zero[t]:
            out[b, 0, t], t = True, t + 1
        t = len(zero) - 1
        while t >= 0 and zero[t]:
            out[b, 0, t], t = True, t - 1
    return out


@st.composite
def padded(draw, batch=2, leads=2, time=96):
    """Records zero-padded at both ends, with scattered zeros (single leads or whole columns)."""
    x = draw(signals(batch, leads, time))
    holes = draw(st.floats(0.0, 0.6))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = x.masked_fill(torch.rand(x.shape, generator=gen) < holes, 0.0)
    for b in range(batch):
        head, tail = draw(st.integers(0, time)), draw(st.integers(0, time))
        x[b, :, :head] = 0.0
        x[b, :, time - tail :] = 0.0
    return x


@settings(max_examples=80, deadline=None)
@given(x=padded())
def test_padding_mask_marks_exactly_the_end_runs(x):
    mask = padding_mask(x)
    assert mask.shape == (x.shape[0], 1, x.shape[2]) and mask.dtype == torch.bool
    assert torch.equal(mask, _expected_mask(x))


def test_padding_mask_ignores_interior_zero_columns():
    x = torch.ones(1, 2, 12)
    x[..., :3] = 0.0
    x[..., 6] = 0.0  # an all-zero column inside the record is not padding
    x[0, 0, -2:] = 0.0  # only one lead zero at the end: not padding either
    x[..., -1] = 0.0
    expected = torch.zeros(1, 1, 12, dtype=torch.bool)
    expected[..., :3] = True
    expected[..., -1] = True
    assert torch.equal(padding_mask(x), expected)
    assert torch.all(padding_mask(torch.zeros(2, 3, 5)))


@settings(max_examples=20, deadline=None)
@given(x=padded(), fs=RATES, seed=st.integers(0, 100))
def test_sap_keeps_padding_at_zero(x, fs, seed):
    mask = padding_mask(x)
    delta, report, _ = _run(SAPAttack(pgd_steps=5, steps=10), x, 0.2, fs, seed)
    assert report.passed, report.violations
    assert torch.count_nonzero(delta.masked_select(mask.expand_as(delta))) == 0


def test_keep_padding_false_perturbs_padding():
    x = torch.randn(2, 2, 80, generator=torch.Generator().manual_seed(3))
    x[..., :20] = 0.0
    mask = padding_mask(x).expand_as(x)
    kept, _, _ = _run(SAPAttack(), x, 0.2, 300.0)
    free, report, _ = _run(SAPAttack(keep_padding=False), x, 0.2, 300.0)
    assert report.passed, report.violations
    assert torch.count_nonzero(kept[mask]) == 0 and torch.count_nonzero(free[mask]) > 0
    assert torch.equal(kept[~mask], free[~mask])
