"""What an attack's δ looks like, per cell: size (ℓ∞, ℓ2, per lead, SNR), similarity of the
attacked records to the clean ones (SSIM) and where its energy lies in frequency (PSD, share
above the band cut-off)."""

from __future__ import annotations

import numpy as np

from .constraints import energy_above
from .similarity import perturbation_psd, ssim_1d


def snr_db(x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Signal-to-perturbation ratio per record in dB (inf for δ = 0)."""
    p_sig = (x.astype(np.float64) ** 2).sum(axis=(1, 2))
    p_pert = (delta.astype(np.float64) ** 2).sum(axis=(1, 2))
    with np.errstate(divide="ignore"):
        return 10 * np.log10(p_sig / p_pert)


METRIC_CHUNK = 32  # records per chunk: float64 and FFT intermediates stay a few MiB


def _chunk_stats(x: np.ndarray, delta: np.ndarray, fs: float, cutoff_hz: float) -> dict:
    """The per-record (and per-lead) quantities of `perturbation_stats` for one chunk."""
    import torch

    return {
        "per_lead": np.abs(delta).max(axis=(0, 2)),
        "hf": energy_above(torch.tensor(delta), fs, cutoff_hz).numpy(),
        "ssim": ssim_1d(x, x + delta),
        "psd": perturbation_psd(delta, fs, average=False),
        "l2": np.sqrt((delta.astype(np.float64) ** 2).sum(axis=(1, 2))),
        "snr": snr_db(x, delta),
    }


def perturbation_stats(x: np.ndarray, delta: np.ndarray, fs: float, cutoff_hz: float) -> dict:
    """ℓ∞, mean ℓ2, per-lead max |δ| (mV), median SNR (dB), SSIM between clean and attacked
    records, the energy share above a cut-off, and the perturbation's Welch PSD. Computed
    `METRIC_CHUNK` records at a time (every quantity is per record or per lead, so chunking
    changes no number) to keep the peak memory near the arrays themselves."""
    delta = np.broadcast_to(delta, x.shape)
    chunks = [slice(i, i + METRIC_CHUNK) for i in range(0, len(x), METRIC_CHUNK)]
    parts = [_chunk_stats(x[c], delta[c], fs, cutoff_hz) for c in chunks or [slice(None)]]

    def joined(name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in parts])

    per_lead = np.max([p["per_lead"] for p in parts], axis=0)
    ssim = joined("ssim")
    freqs = parts[0]["psd"][0]
    psd = np.concatenate([p["psd"][1] for p in parts]).mean(axis=0)
    return {
        "ssim": float(ssim.mean()) if ssim.size else float("nan"),
        "ssim_min": float(ssim.min()) if ssim.size else float("nan"),
        "psd": {
            "freqs_hz": [round(float(f), 4) for f in freqs],
            "mv2_per_hz": [float(p) for p in psd],
        },
        "linf_mv": float(per_lead.max()) if per_lead.size else 0.0,
        "l2_mv": float(joined("l2").mean()),
        "per_lead_max_mv": [float(v) for v in per_lead],
        "snr_db": float(np.median(joined("snr"))),
        "cutoff_hz": float(cutoff_hz),
        "energy_above_cutoff": float(joined("hf").mean()),
    }
