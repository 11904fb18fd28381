"""DNA's Fourier partition: two complementary masks of alternating `bin_hz`-wide bands, applied
as zero-phase circular filters real(ifft(fft(x)·mask)) (METHODS.md §8)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def band_masks(n: int, fs: float, bin_hz: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """(filter1, filter2) over the n FFT bins: filter1 passes 0–15, 30–45, … Hz, filter2 the
    rest; both are conjugate-symmetric (mask[k] = mask[n−k]) and sum to 1."""
    k = np.arange(n)
    hz = np.minimum(k, n - k) * fs / n  # the frequency of bin k and of its mirror n−k
    band = np.floor(hz / bin_hz + 1e-9).astype(np.int64)  # tolerance: exact edges start a band
    first = (band % 2 == 0).astype(np.float64)
    return first, 1.0 - first


def band_filter(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """real(ifft(fft(x)·mask)) along time: a projection onto the mask's bands (circular)."""
    return torch.fft.ifft(torch.fft.fft(x, dim=-1) * mask, dim=-1).real


class BandFilter(nn.Module):
    """A member's input filter with its mask frozen in a buffer (saved with the weights)."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != len(self.mask):
            raise ValueError(f"band filter built for {len(self.mask)} samples, got {x.shape[-1]}")
        return band_filter(x, self.mask).to(x.dtype)
