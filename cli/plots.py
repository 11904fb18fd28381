"""Figures of stored results (matplotlib, no display), for `ecgarena plot` (PNG files) and
`ecgarena report` (inline): a perturbation drawn like ECG paper, the PSD of δ against the band
edge, where fooled records go, and budget sweeps one panel per defense."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "path"  # inline SVG needs no font files
import matplotlib.pyplot as plt  # noqa: E402
from ecgarena.artifacts import ArtifactError, read_tensors  # noqa: E402
from ecgarena.errors import UserError  # noqa: E402
from ecgarena.result import CellResult  # noqa: E402
from ecgarena.tables import cutoff_label  # noqa: E402
from ecgarena.units import format_mv  # noqa: E402

KINDS = ("overlay", "psd", "targets", "sweep")
PAPER, MAJOR, MINOR = "#fff7f5", "#f3a59b", "#fbd9d3"  # ECG paper and its grid lines


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


def _paper(ax: Any, t_end: float, lo: float, hi: float) -> None:
    """ECG-paper grid: major lines every 0.2 s and 1 mV, minor every 0.04 s and 0.2 mV (line
    collections: thousands of grid lines draw in milliseconds)."""
    ax.set_facecolor(PAPER)
    for t_step, mv_step, color, lw in ((0.04, 0.2, MINOR, 0.3), (0.2, 1.0, MAJOR, 0.6)):
        ts = [i * t_step for i in range(int(t_end / t_step) + 1)]
        mvs = [i * mv_step for i in range(math.floor(lo / mv_step), math.ceil(hi / mv_step) + 1)]
        ax.vlines(ts, lo, hi, colors=color, lw=lw, zorder=0)
        ax.hlines(mvs, 0, t_end, colors=color, lw=lw, zorder=0)
    ax.set_xlim(0, t_end)
    ax.set_ylim(lo, hi)


def overlay(result: CellResult, record: int = 0) -> Any:
    """Clean (black) and attacked (red) record on ECG paper, one panel per lead in a 12-lead
    grid, with δ on its own axis under each lead (its scale stated), in mV and s."""
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
    fig = plt.figure(figsize=(7 * cols, 2.1 * rows + 1))
    grid = fig.add_gridspec(2 * rows, cols, height_ratios=[3, 1] * rows, hspace=0.15)
    t = [i / fs for i in range(x.shape[-1])]
    t_end = x.shape[-1] / fs
    for i, lead in enumerate(leads):
        row, col = i % rows, i // rows
        ax = fig.add_subplot(grid[2 * row, col])
        clean, attacked = x[record, i], x[record, i] + delta[record, i]
        lo = min(clean.min(), attacked.min())
        hi = max(clean.max(), attacked.max())
        _paper(ax, t_end, math.floor(lo) - 0.2, math.ceil(hi) + 0.2)
        ax.plot(t, clean, color="black", lw=0.8, label="clean")
        ax.plot(t, attacked, color="tab:red", lw=0.7, alpha=0.75, label="attacked")
        ax.set_ylabel(f"{lead} (mV)", fontsize=8)
        ax.tick_params(labelbottom=False, labelsize=7)
        d_ax = fig.add_subplot(grid[2 * row + 1, col], sharex=ax)
        scale = float(abs(delta[record, i]).max()) or 1e-3
        d_ax.axhline(0, color="0.7", lw=0.5)
        d_ax.plot(t, delta[record, i], color="tab:blue", lw=0.7)
        d_ax.set_ylim(-1.1 * scale, 1.1 * scale)
        d_ax.set_ylabel("δ", fontsize=8)
        d_ax.tick_params(labelsize=6)
        d_ax.text(1.0, 1.0, f"δ: ±{format_mv(scale)}", transform=d_ax.transAxes,
                  ha="right", va="top", fontsize=6, color="tab:blue")  # fmt: skip
        if row == rows - 1:
            d_ax.set_xlabel("time (s)", fontsize=8)
        if i == 0:
            ax.legend(loc="upper right", fontsize=7, ncol=2)
    fig.suptitle(
        f"{title_of(result)}\nrecord {ids[record]} · grid: 1 mV and 0.2 s (major), "
        "0.2 mV and 0.04 s (minor); δ on its own scale under each lead",
        fontsize=9,
    )
    return fig


def psd(result: CellResult) -> Any:
    """Welch PSD of δ, with the band edge the energy share is measured above and, for a
    band-limited threat, the audit's cut-off (edge + margin)."""
    from ecgarena.contract import BAND_MARGIN_HZ

    pert = result.perturbation
    if pert is None:
        raise UserError("this result has no perturbation statistics (a failed cell)")
    freqs, power = pert.psd["freqs_hz"], pert.psd["mv2_per_hz"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.semilogy(freqs[1:], [max(p, 1e-20) for p in power[1:]], color="tab:blue")
    ax.axvline(pert.cutoff_hz, color="tab:red", ls="--", label=f"{cutoff_label(result)}")
    if (result.threat or {}).get("band_hz"):
        audit_at = pert.cutoff_hz + BAND_MARGIN_HZ
        ax.axvline(audit_at, color="tab:purple", ls=":", label=f"audit cut-off {audit_at:g} Hz")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD of δ (mV²/Hz)")
    share = pert.energy_above_cutoff
    ax.set_title(
        f"{title_of(result)}\nδ energy above {pert.cutoff_hz:g} Hz: {share:.2%}", fontsize=9
    )
    ax.legend(fontsize=8)
    return fig


def targets(result: CellResult) -> Any:
    """Where records whose prediction changed went (labels gained/lost, or new class)."""
    tg = result.targets or {}
    if not tg:
        raise UserError("this result has no target statistics (a failed cell)")
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
    return fig


def budget_axis(results: list[CellResult]) -> str:
    """What the x axis means: one budget per record, or a per-lead profile's largest value,
    naming the attacks that have a profile."""
    profiled = sorted(
        {r.spec["attack"] for r in results if isinstance((r.threat or {}).get("budget_mv"), list)}
    )
    if not profiled:
        return "budget ε (mV, ℓ∞ or ℓ2 as the attack's norm)"
    return f"budget ε (mV; for {', '.join(profiled)}: the largest lead of its per-lead profile)"


def sweep(results: list[CellResult]) -> Any:
    """Fooling rate (with its 95 % interval) against the budget, one panel per defense and one
    line per attack/model, markers offset so equal points stay visible."""
    panels: dict[str, dict[str, dict[float, CellResult]]] = {}
    for r in results:  # oldest first: a newer cell at the same budget replaces an older one
        spec, src = r.spec, r.source
        name = f"{spec['attack']} on {spec['model']}"
        options = ", ".join(f"{k}={v}" for k, v in sorted(spec["attack_params"].items()))
        name += f" ({options})" if options else ""
        name += f" from {src['model']}" if src else ""
        panels.setdefault(spec["defense"], {}).setdefault(name, {})[max_budget(r)] = r
    if not any(len(v) > 1 for lines in panels.values() for v in lines.values()):
        raise UserError(
            "a sweep needs results at ≥ 2 budgets of one attack; run e.g. "
            "`ecgarena matrix --attacks scar --eps 0.02,0.05,0.1,0.2,0.4,0.6`"
        )
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 1, 4), squeeze=False)
    markers = "osD^vP*X"
    for ax, (defense, lines) in zip(axes[0], sorted(panels.items()), strict=True):
        for j, (name, by_budget) in enumerate(sorted(lines.items())):
            eps = sorted(by_budget)
            rate = [_fooling(by_budget[e]) for e in eps]
            shift = 1 + 0.015 * (j - (len(lines) - 1) / 2)  # a small multiplicative offset
            ax.errorbar(
                [e * shift for e in eps],
                [v for v, _ in rate],
                yerr=[[v - lo for v, (lo, _) in rate], [hi - v for v, (_, hi) in rate]],
                marker=markers[j % len(markers)], ms=5, capsize=2, alpha=0.85, label=name,
            )  # fmt: skip
        ax.set_title(f"defense {defense}", fontsize=9)
        ax.set_xlabel(budget_axis(results), fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("fooling rate [95% CI]")
    spec = results[0].spec
    fig.suptitle(f"budget sweep · {spec['dataset']} · seed {spec['seed']}", fontsize=9)
    return fig


def _fooling(r: CellResult) -> tuple[float, tuple[float, float]]:
    """A cell's fooling rate and its interval (the point itself when none was computed)."""
    rate = (r.fooling.fooling_rate if r.fooling else None) or 0.0
    ci = (r.intervals.fooling_rate if r.intervals else None) or [rate, rate]
    return rate, (min(ci[0], rate), max(ci[1], rate))


def save(fig: Any, out: Path) -> Path:
    """Write a figure as PNG."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def inline(fig: Any, fmt: str = "svg") -> str:
    """A figure as HTML with nothing external: inline SVG, or a PNG data URI for dense ones."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=90, bbox_inches="tight")
    plt.close(fig)
    if fmt == "svg":
        svg = buf.getvalue().decode()
        return svg[svg.index("<svg") :]
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'
