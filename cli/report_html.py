"""The HTML pieces of `ecgarena report`: the page (inline CSS, no script, font or image from
outside), the attack × defense heatmap with intervals and badges, and each cell's record."""

from __future__ import annotations

import html
import json
from typing import Any

from ecgarena.result import CellResult
from ecgarena.tables import summary_row

from .render import eps_text

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}
th{background:#f3f3f3}td.cell{min-width:9rem;text-align:center}.small{font-size:.8rem;color:#555}
.badge{display:inline-block;border-radius:3px;padding:0 .3rem;font-size:.75rem;font-weight:700;color:#fff}
.violation{background:#b00020}.degenerate{background:#7b1fa2}.warn{background:#e08a00}.failed{background:#444}
figure{margin:1rem 0}figure svg,figure img{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem}code{background:#f3f3f3;padding:0 .2rem}
details{margin:.3rem 0}summary{cursor:pointer}
"""


def esc(value: Any) -> str:
    """Text for HTML."""
    return html.escape(str(value))


def page(title: str, body: list[str]) -> str:
    """The whole self-contained document."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def badges(r: CellResult) -> str:
    """Violation, degenerate clean model, failure and warnings, impossible to miss."""
    out = []
    if r.status == "failed":
        out.append('<span class="badge failed" title="cell failed">FAILED</span>')
    if r.audit is not None and not r.passed:
        out.append('<span class="badge violation" title="threat model violated">VIOLATION</span>')
    if r.gate is not None and r.gate.degenerate:
        why = "; ".join(r.gate.reasons)
        out.append(f'<span class="badge degenerate" title="{esc(why)}">DEGENERATE</span>')
    if r.warnings:
        tip = esc(" | ".join(r.warnings))
        out.append(f'<span class="badge warn" title="{tip}">⚠ {len(r.warnings)}</span>')
    return " ".join(out)


def _ci(r: CellResult, part: str, metric: str) -> str:
    block = getattr(r.intervals, part, None) if r.intervals else None
    ci = (block or {}).get(metric)
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def _colour(value: float | None) -> str:
    """Red (0) to green (1) for a robust metric in [0, 1]; grey when absent."""
    if value is None:
        return "#eee"
    return f"hsl({120 * max(0.0, min(1.0, value)):.0f},65%,82%)"


def eps_key(r: CellResult) -> Any:
    """A cell's budget as a dictionary key (a per-lead list becomes a tuple)."""
    eps = r.spec["eps"]
    return tuple(eps) if isinstance(eps, list) else eps


def heatmap(cells: list[CellResult], eps: Any) -> str:
    """Attack × defense table at one budget: attacked metric [95% CI] coloured, clean beside
    it, fooling rate, badges."""
    at = [r for r in cells if eps_key(r) == eps]
    attacks = sorted({r.spec["attack"] for r in at})
    defenses = sorted({r.spec["defense"] for r in at})
    by = {(r.spec["attack"], r.spec["defense"]): r for r in at}
    metric = summary_row(at[0])["metric"] if at else "accuracy"
    rows = [f"<tr><th>attack \\ defense</th>{''.join(f'<th>{esc(d)}</th>' for d in defenses)}</tr>"]
    for a in attacks:
        tds = []
        for d in defenses:
            r = by.get((a, d))
            if r is None:
                tds.append('<td class="cell small">not run</td>')
                continue
            s = summary_row(r)
            adv, clean = s["adversarial"], s["clean"]
            text = "—" if adv is None else f"<b>{adv:.3f}</b>{_ci(r, 'adversarial', metric)}"
            clean_text = "—" if clean is None else f"{clean:.3f}{_ci(r, 'clean', metric)}"
            fool = s["fooling_rate"]
            fool_text = "" if fool is None else f"<br>fooling {fool:.3f}"
            tds.append(
                f'<td class="cell" style="background:{_colour(adv)}">{text}'
                f'<div class="small">clean {clean_text}{fool_text}</div>{badges(r)}</td>'
            )
        rows.append(f"<tr><th>{esc(a)}</th>{''.join(tds)}</tr>")
    caption = (
        f"ε = {esc(eps_text(list(eps) if isinstance(eps, tuple) else eps))}: attacked {esc(metric)} [95% bootstrap CI] (colour: red 0 → "
        "green 1), the clean value and the fooling rate below"
    )
    return f"<table><caption>{caption}</caption>{''.join(rows)}</table>"


def rerun_command(r: CellResult, home: str) -> str:
    """The exact command that re-runs a stored cell from its stored spec and compares."""
    return f"ecgarena rerun {r.key} --home {home}"


def cell_details(r: CellResult, home: str) -> str:
    """One cell: status, badges, the re-run command, spec, versions, timings, warnings."""
    s = r.spec
    head = (
        f"{esc(s['attack'])} on {esc(s['model'])}/{esc(s['defense'])} · ε "
        f"{esc(eps_text(s['eps']))} · seed "
        f"{esc(s['seed'])} · {esc(r.status)} {badges(r)}"
    )
    parts = [f"<p>re-run and compare: <code>{esc(rerun_command(r, home))}</code></p>"]
    if r.error:
        parts.append(f"<p>error: <code>{esc(r.error)}</code></p>")
    if r.audit is not None:
        checks = "".join(
            f"<li>{'✔' if c.passed else '✘'} {esc(c.name)}: {esc(c.detail)}</li>"
            for c in r.audit.checks
        )
        parts.append(f"<p>audit</p><ul class='small'>{checks}</ul>")
    if r.warnings:
        parts.append("<ul>" + "".join(f"<li>{esc(w)}</li>" for w in r.warnings) + "</ul>")
    for label, value in (
        ("spec", r.spec),
        ("versions", r.versions),
        ("timings (s)", r.timings.model_dump() if r.timings else None),
    ):
        if value:
            parts.append(
                f"<p>{label}</p><pre>{esc(json.dumps(value, indent=1, sort_keys=True))}</pre>"
            )
    return f"<details><summary>{head}</summary>{''.join(parts)}</details>"


def ensemble_table(r: CellResult) -> str:
    """P(≥ k of K members correct), clean and attacked, with Wilson intervals."""
    e = r.ensemble
    if e is None:
        return ""
    parts = sorted(e.at_least_k_correct)
    ks = sorted({k for p in parts for k in e.at_least_k_correct[p]}, key=int)
    head = "".join(f"<th>k = {esc(k)}</th>" for k in ks)
    rows = []
    for p in parts:
        cells = []
        for k in ks:
            v = e.at_least_k_correct[p].get(k)
            ci = (e.at_least_k_interval.get(p) or {}).get(k)
            ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            cells.append(f"<td>{'—' if v is None else f'{v:.3f}'}{ci_text}</td>")
        rows.append(f"<tr><th>{esc(p)}</th>{''.join(cells)}</tr>")
    title = f"{esc(r.spec['defense'])} · {esc(r.spec['attack'])} · ε {esc(eps_text(r.spec['eps']))}"
    return (
        f"<table><caption>P(≥ k of {e.members} members correct) — {title}</caption>"
        f"<tr><th></th>{head}</tr>{''.join(rows)}</table>"
    )
