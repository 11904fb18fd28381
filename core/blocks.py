"""Network blocks shared by model and defense plugins; inputs are standardised
`(batch, leads, time)`. Layer order is part of the contract: one seed builds the same weights."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    """A bias-free 'same'-padded k-wide convolution and its batch norm (splice into a Sequential)."""
    return [nn.Conv1d(c_in, c_out, k, stride, padding=k // 2, bias=False), nn.BatchNorm1d(c_out)]


class BasicBlock1d(nn.Module):
    """Two k-wide convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(c_in, c_out, k, stride), nn.ReLU(), *conv_bn(c_out, c_out, k)
        )
        self.skip = (
            nn.Sequential(*conv_bn(c_in, c_out, 1, stride))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResNet1d(nn.Module):
    """1-D ResNet: stem (k=15, stride 2, max-pool), a stage of `blocks[i]` basic blocks of width
    `width`·2^i (stride 2 from the second), global average pooling, linear."""

    def __init__(
        self, n_leads: int, n_classes: int, blocks: tuple[int, ...], width: int, k: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            *conv_bn(n_leads, width, 15, 2),
            nn.ReLU(),
            nn.MaxPool1d(3, 2, 1),
        ]
        c = width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            for j in range(n):
                layers.append(BasicBlock1d(c, c_out, k, 2 if (j == 0 and i > 0) else 1))
                c = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(-1))
