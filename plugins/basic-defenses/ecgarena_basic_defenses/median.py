"""A running-median filter as a torch module, differentiable exactly or through BPDA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ecgarena import bpda_identity
from torch import nn


def median_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """Median of each lead over an odd window `k`, with reflect padding at the edges."""
    if k == 1:
        return x
    pad = k // 2
    padded = (
        F.pad(x, (pad, pad), mode="reflect")
        if x.shape[-1] > pad
        else F.pad(x, (pad, pad), mode="replicate")
    )
    return padded.unfold(-1, k, 1).median(dim=-1).values


class MedianFilter(nn.Module):
    """Preprocessing layer: median filter; with `bpda` its backward pass is the identity."""

    def __init__(self, k: int, bpda: bool = True) -> None:
        super().__init__()
        if k < 1 or k % 2 == 0:
            raise ValueError(f"median window must be an odd number ≥ 1, got {k}")
        self.k, self.bpda = k, bpda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = median_filter(x, self.k)
        return bpda_identity(x, y) if self.bpda else y

    def extra_repr(self) -> str:
        return f"k={self.k}, bpda={self.bpda}"
