"""Channel-wise Activation Suppressing (Bai et al. ICLR 2021, `bymavis/CAS_ICLR2021`) in a 1-D
ResNet, with the ℓ∞-distance classifier of CASLCNet (Chen, Si et al., Sensors 2024; METHODS §7).

CASLCNet's text gives the recipe, not the layout. Choices made here: a 1-D ResNet stem (k=15,
stride 2, max-pool) and three stages of basic blocks (1, 1, 2), widths w, 2w, 4w, where the two
blocks of the last stage are CAS blocks (as layer4 of the CAS ResNet-18); global average pooling;
then a two-layer ℓ∞-distance head (4w → 4w with mean shift → K with bias), logits = −distance,
kept at p = ∞ (the backbone is not Lipschitz, so nothing is certified and no ℓp relaxation is
scheduled).
"""

from __future__ import annotations

import torch
from ecgarena import BasicBlock1d as Block
from ecgarena import conv_bn
from torch import nn

from .linf_dist import DistLayer

HEAD_GAIN = 10.0  # the head's weights learn 10× faster than the CNN's (lr 1e-2 vs 1e-3)


def mask_rows(aux: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Which row of W_fc reweights each record: the true label y when given, else ŷ = argmax of
    the auxiliary logits. A multi-hot y (multilabel) gives the present label that the aux head
    ranks highest (ŷ when none is present), so training and eval both use one raw row."""
    if y is None:
        return aux.argmax(1)
    if y.dim() == 2:
        present = y > 0
        ranked = aux.detach().masked_fill(~present, -torch.inf).argmax(1)
        return torch.where(present.any(1), ranked, aux.argmax(1))
    return y.long()


class CASBlock(Block):
    """A residual block followed by CAS: a linear head on GAP of the post-ReLU features h gives
    auxiliary logits a (from the unmasked h); h is then reweighted channel-wise by the raw row
    W_fc[y] (true label, training) or W_fc[argmax a] (eval), no sigmoid."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, n_classes: int) -> None:
        super().__init__(c_in, c_out, k, stride)
        self.fc = nn.Linear(c_out, n_classes)

    def cas(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked features, auxiliary logits); `y` is used only in training."""
        h = super().forward(x)
        aux = self.fc(h.mean(-1))
        rows = mask_rows(aux, y if self.training else None)
        return h * self.fc.weight[rows].unsqueeze(-1), aux


class CASLCNet(nn.Module):
    """1-D ResNet with CAS blocks in its last stage and an ℓ∞-distance head (see the module)."""

    def __init__(self, n_leads: int, n_classes: int, width: int = 16, kernel: int = 7) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(*conv_bn(n_leads, w, 15, 2), nn.ReLU(), nn.MaxPool1d(3, 2, 1))
        self.stages = nn.Sequential(Block(w, w, kernel, 1), Block(w, 2 * w, kernel, 2))
        self.cas_blocks = nn.ModuleList(
            [
                CASBlock(2 * w, 4 * w, kernel, 2, n_classes),
                CASBlock(4 * w, 4 * w, kernel, 1, n_classes),
            ]
        )
        self.norm = nn.BatchNorm1d(4 * w)
        self.hidden = DistLayer(4 * w, 4 * w, gain=HEAD_GAIN)
        self.out = DistLayer(4 * w, n_classes, mean_shift=False, bias=True, gain=HEAD_GAIN)

    def forward_cas(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits, auxiliary logits of each CAS block); the masks use `y` only in training."""
        h, aux = self.stages(self.stem(x)), []
        for block in self.cas_blocks:
            h, a = block.cas(h, y)
            aux.append(a)
        return -self.out(self.hidden(self.norm(h.mean(-1)))), aux

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits without a label: masks from ŷ = argmax of the auxiliary heads."""
        return self.forward_cas(x)[0]


def cas_outputs(
    clf: nn.Module, x: torch.Tensor, y: torch.Tensor | None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A Classifier's logits and CAS auxiliary logits on x (mV), labels reaching the masks."""
    return clf.net.forward_cas(clf.standardize(clf.preprocess(x)), y)
