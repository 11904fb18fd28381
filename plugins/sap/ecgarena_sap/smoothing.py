"""SAP's smoothing operator S(θ): the mean of 25 Gaussian convolutions (5 sizes × 5 σ at
300 Hz, Han et al. 2020), scaled to the dataset's rate.

Paper form: the reference ran at 300 Hz only, with sizes 5, 7, 11, 15, 19 × σ 1, 3, 5, 7, 10
samples (ADV_ECG `create_adv_conv_train.py`); at 300 Hz the bank here is exactly that.

Our scaling rule for other rates: a kernel of size s and σ at 300 Hz becomes size
max(round-to-odd(s·fs/300), min(`min_taps`, s)) and σ·fs/300 samples, so every kernel keeps its
duration in milliseconds, except that rescaling never shrinks a kernel below `min_taps` (3)
taps. Without that floor, at 100 Hz the five size-5 kernels round to 1-tap identities and S(θ)
keeps 32 % of its gain at 40 Hz (22 % at 300 Hz); with it, 14 %. The kernels are centred and
zero-padded to 'same' length, so the mean of the 25 convolutions is one convolution with the
mean kernel: S is linear and symmetric, and ‖S(θ)‖∞ ≤ ‖θ‖∞.
"""

from __future__ import annotations

import math

import ecgarena
import torch

REFERENCE_FS = 300.0
SIZES = (5, 7, 11, 15, 19)
SIGMAS = (1.0, 3.0, 5.0, 7.0, 10.0)
MIN_TAPS = 3  # rescaling keeps every kernel at least this long (odd), our choice


def odd(value: float) -> int:
    """The odd integer nearest to `value`, ties upwards (at least 1)."""
    return max(1, 2 * math.floor((value - 1) / 2 + 0.5) + 1)


def scaled_size(size: int, fs: float, min_taps: int = MIN_TAPS) -> int:
    """Taps at `fs` of a kernel `size` taps long at 300 Hz: the same duration, rounded to odd,
    never below `min_taps` (nor above `size` on account of that floor)."""
    return max(odd(size * fs / REFERENCE_FS), min(min_taps, odd(size)))


def kernel_bank(
    fs: float,
    sizes: tuple[int, ...] = SIZES,
    sigmas: tuple[float, ...] = SIGMAS,
    min_taps: int = MIN_TAPS,
) -> list[torch.Tensor]:
    """Every (size, σ) Gaussian at `fs`, each non-negative with unit sum (float64)."""
    if min_taps < 1 or min_taps % 2 == 0:
        raise ValueError(f"min_taps must be an odd number ≥ 1, got {min_taps}")
    scale = fs / REFERENCE_FS
    bank = []
    for s in sizes:
        n = scaled_size(s, fs, min_taps)
        i = torch.arange(n, dtype=torch.float64) - n // 2
        for sigma in sigmas:
            w = torch.exp(-(i**2) / (2 * (sigma * scale) ** 2))
            bank.append(w / w.sum())
    return bank


def mean_kernel(bank: list[torch.Tensor]) -> torch.Tensor:
    """The single kernel equal to averaging the bank's 'same'-padded convolutions."""
    width = max(len(w) for w in bank)
    total = torch.zeros(width, dtype=torch.float64)
    for w in bank:
        pad = (width - len(w)) // 2
        total[pad : pad + len(w)] += w
    return total / len(bank)


def smooth(theta: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """S(θ): the same kernel on every lead, zero padding, 'same' length (the reference's)."""
    return ecgarena.smooth(theta, kernel, padding="zeros")


def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """True on the leading and trailing samples where every lead is exactly 0 (zero padding,
    as CinC 2017 records are padded), shaped `(B, 1, T)`."""
    zero = (x == 0).all(dim=1, keepdim=True)
    lead = torch.cumprod(zero.int(), dim=-1).bool()
    trail = torch.cumprod(zero.flip(-1).int(), dim=-1).bool().flip(-1)
    return lead | trail
