"""A 1-D convolutional denoising autoencoder used as a purifier in front of the classifier
(the "blind denoiser" family the CPR seed argues against)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from ecgarena import bpda_identity, progress, to_tensor
from torch import nn


class DenoisingAutoencoder(nn.Module):
    """Residual conv autoencoder on mV signals: x̂ = x + decoder(encoder(x)), same length."""

    def __init__(self, leads: int, width: int = 32, kernel: int = 9, bpda: bool = False) -> None:
        super().__init__()
        pad = kernel // 2
        self.encoder = nn.Sequential(
            nn.Conv1d(leads, width, kernel, 2, pad),
            nn.ReLU(),
            nn.Conv1d(width, 2 * width, kernel, 2, pad),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(2 * width, width, kernel, 2, pad, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose1d(width, leads, kernel, 2, pad, output_padding=1),
        )
        self.bpda = bpda

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.encoder(x))
        t = x.shape[-1]
        out = out[..., :t] if out.shape[-1] >= t else F.pad(out, (0, t - out.shape[-1]))
        return x + out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reconstruct(x)
        return bpda_identity(x, y) if self.bpda else y


def train_denoiser(
    dae: DenoisingAutoencoder,
    x: np.ndarray,
    noise_mv: float,
    epochs: int,
    batch_size: int,
    lr: float,
    device: torch.device,
    seed: int,
) -> list[float]:
    """Fit ‖D(x + n) − x‖² with n ~ N(0, noise²) (mV); returns the mean loss of each epoch."""
    dae.to(device).train()
    opt = torch.optim.Adam(dae.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    history = []
    with progress() as bar:
        task = bar.add_task("train denoiser", total=epochs, info="")
        for _ in range(epochs):
            order, total = rng.permutation(len(x)), 0.0
            for i in range(0, len(x), batch_size):
                idx = np.sort(order[i : i + batch_size])
                clean = to_tensor(x[idx], device).float()
                noisy = clean + torch.randn(clean.shape, generator=gen, device=device) * noise_mv
                loss = F.mse_loss(dae.reconstruct(noisy), clean)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            history.append(total / max(len(x), 1))
            bar.update(task, advance=1, info=f"mse {history[-1]:.5f} mV²")
    dae.eval()
    return history
