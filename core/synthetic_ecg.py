"""Deterministic synthetic 12-lead ECG in mV with PTB-XL-like superclasses.

The heart is a 3-D dipole (x left, y inferior, z anterior): each beat is a sum of Gaussian
waves (P, Q, R, S, T, and pathological extras), each with its own direction. Limb leads come
from the frontal projection (Einthoven and Goldberger relations hold exactly before noise);
precordial leads from horizontal-plane directions V1 (right-anterior) to V6 (left-lateral).
Pathologies change morphology with a random severity, so some cases are subtle, and a few
annotations disagree with the morphology (label noise, as in real databases).
"""

from __future__ import annotations

import numpy as np

GENERATOR_VERSION = 2  # bump whenever records change, so cached datasets are rebuilt
CLASSES = ("CD", "HYP", "MI", "NORM", "STTC")
LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
PATHOLOGIES = ("CD", "HYP", "MI", "STTC")
PATHOLOGY_WEIGHTS = np.array([15, 10, 15, 15]) / 55  # CD, HYP, MI, STTC among abnormal records
P_NORM, P_SECOND = 0.45, 0.15
P_LABEL_NOISE = 0.06  # share of records whose annotation disagrees with the morphology
V_ANGLES = np.deg2rad([115, 94, 77, 60, 30, 0])  # horizontal-plane angle of V1–V6 from the left


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


ANTERIOR, INFERIOR, LATERAL = (
    _unit((0.2, 0.0, 1.0)),
    _unit((0.0, 1.0, 0.1)),
    _unit((1.0, 0.3, -0.2)),
)


def _labels(rng: np.random.Generator) -> set[str]:
    if rng.random() < P_NORM:
        return {"NORM"}
    first = rng.choice(PATHOLOGIES, p=PATHOLOGY_WEIGHTS)
    labels = {str(first)}
    if rng.random() < P_SECOND:
        rest = [p for p in PATHOLOGIES if p != first]
        w = np.array([PATHOLOGY_WEIGHTS[PATHOLOGIES.index(p)] for p in rest])
        labels.add(str(rng.choice(rest, p=w / w.sum())))
    return labels


def _waves(
    rng: np.random.Generator, labels: set[str], rr: float
) -> list[tuple[float, float, np.ndarray]]:
    """The (offset from R in s, width σ in s, 3-D amplitude in mV) of each wave of a beat."""
    amp = rng.uniform(0.6, 1.5)  # body habitus / electrode distance
    axis = np.deg2rad(rng.uniform(-15, 90))
    r_dir = np.array([np.cos(axis), np.sin(axis), -0.1])
    pr = rng.uniform(0.12, 0.19)
    qt = rng.uniform(0.26, 0.3) * np.sqrt(rr)
    qrs = rng.uniform(0.85, 1.1)  # QRS width factor (normal ≈ 90 ms)
    t_scale, r_scale = rng.uniform(0.6, 1.3), 1.0
    extra: list[tuple[float, float, np.ndarray]] = []
    sev = {k: rng.uniform(0.05, 0.9) for k in sorted(labels)}  # sorted: set order varies by process
    if "CD" in labels:
        s = sev["CD"]
        qrs *= 1.4 + 0.9 * s
        if rng.random() < 0.5:  # right bundle branch block: terminal R' towards right-anterior
            extra.append((0.045 * qrs, 0.012 * qrs, s * 0.7 * _unit((-0.6, 0.0, 1.0))))
        else:  # left bundle branch block: slurred, delayed leftward-posterior force
            extra.append((0.03 * qrs, 0.02 * qrs, s * 0.6 * _unit((1.0, 0.2, -0.8))))
            t_scale -= 1.2 * s  # secondary T discordance
        if rng.random() < 0.4:  # first-degree AV block
            pr = rng.uniform(0.22, 0.3)
    if "HYP" in labels:
        s = sev["HYP"]
        r_scale += 0.6 + 0.9 * s
        if rng.random() < 0.5:  # strain pattern
            extra.append((0.16, 0.06, -s * 0.12 * LATERAL))
            t_scale -= 0.8 * s
    if "MI" in labels:
        s = sev["MI"]
        territory = ANTERIOR if rng.random() < 0.6 else INFERIOR
        extra.append((-0.022, 0.012, -s * 0.45 * territory))  # pathological Q away from the infarct
        if rng.random() < 0.5:  # acute: ST elevation
            extra.append((0.12, 0.05, s * 0.25 * territory))
        extra.append((qt - 0.02, 0.045, -s * 0.4 * territory))  # T inversion over the territory
    if "STTC" in labels:
        s = sev["STTC"]
        extra.append((0.14, 0.055, -s * 0.18 * _unit((0.7, 0.7, 0.3))))  # ST depression
        t_scale -= rng.uniform(0.6, 1.6) * s  # flat or inverted T
    r = amp * r_scale
    waves = [
        (-pr, 0.022, amp * np.array([0.1, 0.13, 0.03])),  # P
        (-0.022 * qrs, 0.008 * qrs, amp * np.array([-0.08, -0.02, 0.12])),  # septal q
        (0.0, 0.011 * qrs, r * 1.1 * r_dir),  # R
        (0.024 * qrs, 0.01 * qrs, r * np.array([-0.25, -0.2, -0.45])),  # S
        (qt, 0.05, amp * t_scale * np.array([0.22, 0.2, 0.12])),  # T
    ]
    return waves + extra


def _record(rng: np.random.Generator, fs: int, n: int, noise: bool) -> tuple[np.ndarray, set[str]]:
    labels = _labels(rng)
    annotated = _labels(rng) if rng.random() < P_LABEL_NOISE else labels
    hr = rng.uniform(50, 100)
    rr = 60.0 / hr
    waves = _waves(rng, labels, rr)
    t = np.arange(n) / fs
    n_beats = int(np.ceil(n / fs / rr)) + 3
    beats = rng.uniform(-rr, 0) + np.cumsum(rr * (1 + rng.normal(0, 0.03, n_beats)))
    offsets = np.array([w[0] for w in waves])
    widths = np.array([w[1] for w in waves])
    vectors = np.stack([w[2] for w in waves])  # (waves, 3)
    jitter = 1 + rng.normal(0, 0.04, (n_beats, len(waves)))
    centres = beats[:, None] + offsets[None]  # (beats, waves)
    shape = np.exp(
        -((t[:, None, None] - centres[None]) ** 2) / (2 * widths**2)
    )  # (T, beats, waves)
    dipole = np.einsum("tbw,bw,wd->td", shape, jitter, vectors)  # (T, 3)
    lead_i = dipole[:, 0]
    lead_ii = dipole @ np.array([0.5, np.sqrt(3) / 2, 0.0])
    phi = V_ANGLES + np.deg2rad(rng.normal(0, 4, 6))
    v_dirs = np.stack([np.cos(phi), np.full(6, 0.15), np.sin(phi)]) * np.array(
        [1.0, 1.3, 1.4, 1.4, 1.2, 1.0]
    )
    limb = np.stack(
        [
            lead_i,
            lead_ii,
            lead_ii - lead_i,
            -(lead_i + lead_ii) / 2,
            lead_i - lead_ii / 2,
            lead_ii - lead_i / 2,
        ]
    )
    x = np.concatenate([limb, (dipole @ v_dirs).T])
    if noise:
        f = rng.uniform(0.05, 0.5, (12, 2, 1))
        ph = rng.uniform(0, 2 * np.pi, (12, 2, 1))
        wander = rng.uniform(0, 0.075, (12, 2, 1)) * np.sin(2 * np.pi * f * t + ph)
        x = x + wander.sum(1) + rng.normal(0, rng.uniform(0.015, 0.06), x.shape)
    return x.astype(np.float32), annotated


def generate(
    n: int, seed: int, fs: int = 100, duration_s: float = 10.0, noise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """`n` records `(n, 12, fs·duration)` in mV and multilabel targets `(n, 5)` in CLASSES order.

    Record i depends only on (seed, i), so a shorter dataset is a prefix of a longer one.
    """
    samples = round(fs * duration_s)
    x = np.empty((n, len(LEADS), samples), np.float32)
    y = np.zeros((n, len(CLASSES)), np.float32)
    for i in range(n):
        x[i], labels = _record(np.random.default_rng([seed, i]), fs, samples, noise)
        y[i, [CLASSES.index(c) for c in labels]] = 1.0
    return x, y
