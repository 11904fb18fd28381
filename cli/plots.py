"""PNG figures of stored results (matplotlib, no display): a perturbation overlaid on a record,
the perturbation's PSD against the cut-off, where fooled records go, and a budget sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from ecgarena.artifacts import ArtifactError, read_tensors  # noqa: E402
from ecgarena.errors import UserError  # noqa: E402
from ecgarena.result import CellResult  # noqa: E402
from ecgarena.units import format_mv  # noqa: E402

KINDS = ("overlay", "psd", "targets", "sweep")


def title_of(result: CellResult) -> str:
    """What a figure shows: dataset, model, defense, attack (and its source), budget, seed."""
    spec = result.spec
    src = result.source
    via = f" (crafted on {src['model']}/{src['defense']})" if src else ""
    return (
        f"{spec['dataset']} · {spec['model']} · {spec['defense']} · {spec['attack']}{via}"
        f" · ε {budget_text(result)} · seed {spec['seed']}"
    )


def budget_text(result: CellResult) -> str:
    """The declared budget: one value, or the distinct per-lead values."""
    budget = (result.threat or {})["budget_mv"]
    if isinstance(budget, list):
        return "/".join(format_mv(b) for b in sorted(set(budget)))
    return format_mv(budget)


def max_budget(result: CellResult) -> float:
    """The largest per-lead budget (the V2–V6 budget for SCAR's profile), in mV."""
    budget = (result.threat or {})["budget_mv"]
    return max(budget) if isinstance(budget, list) else budget


def overlay(result: CellResult, out: Path, record: int = 0) -> Path:
    """Clean and attacked record, one panel per lead (a 12-lead grid), in mV."""
    try:
        tensors, meta = read_tensors(Path(result.artifact or ""))
    except ArtifactError as e:
        raise UserError(
            f"cannot draw the stored records: {e} (re-run the cell with --force)"
        ) from None
    x, delta = tensors["x"].numpy(), tensors["delta"].numpy()
    if not 0 <= record < len(x):
        raise UserError(f"record {record} is not stored (valid: 0 to {len(x) - 1})")
    leads, fs, ids = json.loads(meta["leads"]), float(meta["fs"]), json.loads(meta["ids"])
    cols = 2 if len(leads) > 3 else 1
    rows = math.ceil(len(leads) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 1.6 * rows + 1), squeeze=False)
    t = [i / fs for i in range(x.shape[-1])]
    for i, lead in enumerate(leads):
        ax = axes[i % rows][i // rows]
        ax.plot(t, x[record, i], color="black", lw=0.7, label="clean")
        ax.plot(
            t, x[record, i] + delta[record, i], color="tab:red", lw=0.7, alpha=0.8, label="attacked"
        )
        ax.plot(t, delta[record, i], color="tab:blue", lw=0.7, label="δ")
        ax.set_ylabel(f"{lead} (mV)")
    for ax in axes.flat[len(leads) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    axes[0][0].legend(loc="upper right", fontsize=7, ncol=3)
    fig.suptitle(f"{title_of(result)}\nrecord {ids[record]}", fontsize=9)
    return save(fig, out)


def psd(result: CellResult, out: Path) -> Path:
    """Welch PSD of the perturbation, with the band limit and the energy share above it."""
    pert = result.perturbation
    if pert is None:
        raise UserError("this result has no perturbation statistics (a failed cell)")
    freqs, power = pert.psd["freqs_hz"], pert.psd["mv2_per_hz"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.semilogy(freqs[1:], [max(p, 1e-20) for p in power[1:]], color="tab:blue")
    cutoff = (result.threat or {}).get("band_hz") or pert.cutoff_hz
    ax.axvline(cutoff, color="tab:red", ls="--", label=f"cut-off {cutoff:g} Hz")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD of δ (mV²/Hz)")
    share = pert.energy_above_cutoff
    ax.set_title(f"{title_of(result)}\nenergy above {pert.cutoff_hz:g} Hz: {share:.2%}", fontsize=9)
    ax.legend()
    return save(fig, out)


def targets(result: CellResult, out: Path) -> Path:
    """Where records whose prediction changed went (labels gained/lost, or new class)."""
    tg = result.targets or {}
    fig, ax = plt.subplots(figsize=(7, 4))
    if "gained" in tg:
        classes = list(tg["gained"])
        xs = range(len(classes))
        ax.bar([i - 0.2 for i in xs], [tg["gained"][c] for c in classes], 0.4, label="gained")
        ax.bar([i + 0.2 for i in xs], [tg["lost"][c] for c in classes], 0.4, label="lost")
        ax.legend()
    else:
        classes = list(tg["into"])
        ax.bar(range(len(classes)), [tg["into"][c] for c in classes], color="tab:red")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylabel(f"records (of {tg['n_changed']} whose prediction changed)")
    top = f"top: {tg['top_class']} {tg['top_share']:.0%}" if tg["top_class"] else "no change"
    ax.set_title(f"{title_of(result)}\n{top}", fontsize=9)
    return save(fig, out)


def sweep(results: list[CellResult], out: Path) -> Path:
    """Fooling rate and SSIM against the largest per-lead budget, one line per attack/model."""
    lines: dict[str, dict[float, tuple[float, float]]] = {}
    for r in results:  # oldest first: a newer cell at the same budget replaces an older one
        spec = r.spec
        src = r.source
        name = f"{spec['attack']} on {spec['model']}/{spec['defense']}"
        options = ", ".join(f"{k}={v}" for k, v in sorted(spec["attack_params"].items()))
        name += f" ({options})" if options else ""
        name += f" from {src['model']}" if src else ""
        point = (r.fooling and r.fooling.fooling_rate, r.perturbation and r.perturbation.ssim)
        lines.setdefault(name, {})[max_budget(r)] = point
    if not any(len(v) > 1 for v in lines.values()):
        raise UserError(
            "a sweep needs results at ≥ 2 budgets of one attack; run e.g. "
            "`ecgarena matrix --attacks scar --eps 0.02,0.05,0.1,0.2,0.4,0.6`"
        )
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for name, by_budget in sorted(lines.items()):
        eps = sorted(by_budget)
        a1.plot(eps, [by_budget[e][0] for e in eps], marker="o", label=name)
        a2.plot(eps, [by_budget[e][1] for e in eps], marker="o", label=name)
    a1.set_ylabel("fooling rate")
    a2.set_ylabel("SSIM (clean vs attacked)")
    for ax in (a1, a2):
        ax.set_xlabel("budget (mV; V2–V6 for the seed profile)")
        ax.grid(alpha=0.3)
    a1.legend(fontsize=7)
    spec = results[0].spec
    fig.suptitle(f"budget sweep · {spec['dataset']} · seed {spec['seed']}", fontsize=9)
    return save(fig, out)


def save(fig: Any, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
