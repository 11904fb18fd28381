"""SAP's smoothing operator S(θ): the mean of 25 Gaussian convolutions (5 sizes × 5 σ at
300 Hz, Han et al. 2020), scaled to the dataset's rate.

Scaling rule: a kernel of size s and σ at 300 Hz becomes size round-to-odd(s·fs/300) and
σ·fs/300 samples, so every kernel keeps its duration in milliseconds. The kernels are centred
and zero-padded to 'same' length, so the mean of the 25 convolutions is one convolution with
the mean kernel: S is linear and symmetric, and ‖S(θ)‖∞ ≤ ‖θ‖∞.
"""

from __future__ import annotations

import math

import torch
from ecgarena import filters

REFERENCE_FS = 300.0
SIZES = (5, 7, 11, 15, 19)
SIGMAS = (1.0, 3.0, 5.0, 7.0, 10.0)


def odd(value: float) -> int:
    """The odd integer nearest to `value`, ties upwards (at least 1)."""
    return max(1, 2 * math.floor((value - 1) / 2 + 0.5) + 1)


def kernel_bank(
    fs: float, sizes: tuple[int, ...] = SIZES, sigmas: tuple[float, ...] = SIGMAS
) -> list[torch.Tensor]:
    """Every (size, σ) Gaussian at `fs`, each non-negative with unit sum (float64)."""
    scale = fs / REFERENCE_FS
    bank = []
    for s in sizes:
        n = odd(s * scale)
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
    return filters.smooth(theta, kernel, padding="zeros")


def padding_mask(x: torch.Tensor) -> torch.Tensor:
    """True on the leading and trailing samples where every lead is exactly 0 (zero padding,
    as CinC 2017 records are padded), shaped `(B, 1, T)`."""
    zero = (x == 0).all(dim=1, keepdim=True)
    lead = torch.cumprod(zero.int(), dim=-1).bool()
    trail = torch.cumprod(zero.flip(-1).int(), dim=-1).bool().flip(-1)
    return lead | trail
