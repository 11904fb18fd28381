"""Randomized smoothing (Cohen et al. 2019, `locuslab/smoothing` core.py) for mV signals.

The smoothed classifier g(x) = argmax_c P(f(x + δ) = c), δ ~ N(0, σ² I), σ in mV. Multilabel
tasks smooth each label as a binary classifier; a record's guarantee is the smallest label
radius with a Bonferroni-corrected α/C (METHODS.md §4).
"""

from __future__ import annotations

import numpy as np
import torch
from ecgarena import ABSTAIN, Classifier, ClassifierInfo
from scipy.stats import beta, binomtest, norm
from torch import nn


def lower_confidence_bound(n_a: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided (1 − α) Clopper–Pearson lower bound on p_A from n_a successes of n."""
    n_a = np.asarray(n_a)
    return np.where(n_a > 0, beta.ppf(alpha, np.maximum(n_a, 1), n - n_a + 1), 0.0)


def radius(p_a: np.ndarray, sigma_mv: float) -> np.ndarray:
    """Certified ℓ2 radius σ·Φ⁻¹(p_A) in mV; 0 (abstain) where p_A < 0.5."""
    p_a = np.asarray(p_a, dtype=np.float64)
    return np.where(p_a >= 0.5, sigma_mv * norm.ppf(np.clip(p_a, 0.5, 1.0)), 0.0)


class SmoothedClassifier(Classifier):
    """A base classifier under Gaussian noise. In train mode it is the base classifier (the
    defense adds the noise); in eval mode its logits are those of the soft smoothed classifier
    (mean class probability over `samples` noise draws), so attacks on it are EOT attacks.
    Its decisions (accuracy, F1) are Cohen's PREDICT (`decide`), which may abstain."""

    def __init__(
        self,
        net: nn.Module,
        sigma_mv: float,
        samples: int,
        task: str,
        seed: int,
        batch: int = 1000,
        n0: int = 100,
        n: int = 1000,
        alpha: float = 0.001,
    ) -> None:
        info = ClassifierInfo(
            deterministic=False,
            differentiable=True,
            forward_passes=samples,
            certifies=True,
            gradient="eot",
            notes=f"Gaussian σ {sigma_mv:g} mV, {samples} draws per prediction",
        )
        super().__init__(net, info=info)
        self.sigma_mv, self.samples, self.task, self.seed, self.batch = (
            sigma_mv,
            samples,
            task,
            seed,
            batch,
        )
        self.n0, self.n, self.alpha = n0, n, alpha
        self._generators: dict[str, torch.Generator] = {}

    certified_norm = "l2"

    @property
    def certify_passes(self) -> int:
        """Forward passes `certify` spends per record: n0 to select, n to estimate."""
        return self.n0 + self.n

    def generator(self, device: torch.device) -> torch.Generator:
        """One seeded noise generator per device (reproducible for a fixed seed and call order)."""
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def noise(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        g = self.generator(device)
        return torch.randn(shape, generator=g, device=device) * self.sigma_mv

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The base classifier's logits (standardisation inside)."""
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.base(x)
        probs = 0.0
        for _ in range(self.samples):
            logits = self.base(x + self.noise(tuple(x.shape), x.device))
            probs = probs + (
                torch.sigmoid(logits) if self.task == "multilabel" else logits.softmax(1)
            )
        p = (probs / self.samples).clamp(1e-6, 1 - 1e-6)
        return torch.logit(p) if self.task == "multilabel" else p.log()

    @torch.no_grad()
    def counts(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Votes of the base classifier over n noise draws per record: `(B, C)` class counts
        (multiclass) or counts of each label being on (multilabel)."""
        b = x.shape[0]
        total = None
        draws_per_chunk = max(1, self.batch // max(b, 1))
        done = 0
        while done < n:
            k = min(draws_per_chunk, n - done)
            noisy = x.unsqueeze(0) + self.noise((k, *x.shape), x.device)
            logits = self.base(noisy.reshape(k * b, *x.shape[1:])).view(k, b, -1)
            if self.task == "multilabel":
                votes = (logits > 0).sum(0)
            else:
                votes = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0)
            total = votes if total is None else total + votes
            done += k
        return total

    @torch.no_grad()
    def predict(self, x: torch.Tensor, n: int, alpha: float) -> np.ndarray:
        """Cohen's PREDICT: the top class, or ABSTAIN when the two-sided binomial test of the top
        two counts is not significant at α. Multilabel: per label, −1 where undecided."""
        counts = self.counts(x, n).cpu().numpy()
        if self.task == "multilabel":
            on = counts
            p = np.vectorize(lambda k: binomtest(int(max(k, n - k)), n, 0.5).pvalue)(on)
            return np.where(p <= alpha, (on * 2 > n).astype(np.int64), ABSTAIN)
        top2 = np.sort(counts, axis=1)[:, ::-1][:, :2]
        out = counts.argmax(1)
        for i, (n1, n2) in enumerate(top2):
            if binomtest(int(n1), int(n1 + n2), 0.5).pvalue > alpha:
                out[i] = ABSTAIN
        return out

    @property
    def decision_rule(self) -> str:
        """How `decide` answers (stored with every result of this defense)."""
        return f"PREDICT (Cohen et al.), n={self.n}, α={self.alpha:g}, σ={self.sigma_mv:g} mV"

    def decide(self, x: torch.Tensor) -> np.ndarray:
        """The defense's decision: PREDICT with the certification's n and α (abstain = −1);
        the soft classifier (`forward`) stays the EOT attack target and the AUROC scores."""
        return self.predict(x, self.n, self.alpha)

    @torch.no_grad()
    def certify(
        self,
        x: torch.Tensor,
        n0: int | None = None,
        n: int | None = None,
        alpha: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cohen's CERTIFY: select with n0 draws, estimate with n fresh draws; returns
        (prediction or ABSTAIN, ℓ2 radius in mV). Multilabel: the label vector and the smallest
        label radius (α/C per label), ABSTAIN if any label cannot be certified."""
        n0, n, alpha = n0 or self.n0, n or self.n, alpha or self.alpha
        select = self.counts(x, n0).cpu().numpy()
        counts = self.counts(x, n).cpu().numpy()
        if self.task == "multilabel":
            labels = (select * 2 > n0).astype(np.int64)
            n_a = np.where(labels == 1, counts, n - counts)
            p_a = lower_confidence_bound(n_a, n, alpha / counts.shape[1])
            r = radius(p_a, self.sigma_mv).min(axis=1)
            certified = (p_a >= 0.5).all(axis=1)
            return np.where(certified[:, None], labels, ABSTAIN), np.where(certified, r, 0.0)
        c_hat = select.argmax(1)
        n_a = counts[np.arange(len(c_hat)), c_hat]
        p_a = lower_confidence_bound(n_a, n, alpha)
        certified = p_a >= 0.5
        return np.where(certified, c_hat, ABSTAIN), radius(p_a, self.sigma_mv)
