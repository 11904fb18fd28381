"""The CPR network: content encoder E_c (pathology), style encoder E_s (background), decoder D
from [z_c, z_s] back to the standardised signal, and a classifier head on z_c.

Inference is E_c then the head: one forward pass, the cost of a plain ResNet1d18-style model.
"""

from __future__ import annotations

import math

import torch
from ecgarena import ResNet1d
from torch import nn


class Decoder(nn.Module):
    """Latent `(B, 2d)` → signal `(B, leads, T)`: a linear map to T/8 steps, then three
    upsample-and-convolve stages."""

    def __init__(self, latent: int, leads: int, n_samples: int, width: int) -> None:
        super().__init__()
        self.steps, self.width, self.n_samples = math.ceil(n_samples / 8), width, n_samples
        self.fc = nn.Linear(latent, width * self.steps)
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [
                nn.Upsample(scale_factor=2, mode="linear", align_corners=False),
                nn.Conv1d(width, width, 7, padding=3),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*layers, nn.Conv1d(width, leads, 7, padding=3))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), self.width, self.steps)
        return self.body(h)[..., : self.n_samples]


class CPRNet(nn.Module):
    """Dual-pathway autoencoder; `forward` is the deployed classifier head(E_c(x))."""

    def __init__(
        self, leads: int, n_samples: int, n_classes: int, latent: int = 64, width: int = 16
    ) -> None:
        super().__init__()
        blocks = (2, 2, 2, 2)  # ResNet-18 layout
        self.content = ResNet1d(leads, latent, blocks, width, 7)
        self.style = ResNet1d(leads, latent, blocks, width, 7)
        self.decoder = Decoder(2 * latent, leads, n_samples, 2 * width)
        self.head = nn.Linear(latent, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.content(x))
