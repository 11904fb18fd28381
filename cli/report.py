"""`ecgarena report` (one self-contained HTML file over the stored results) and `ecgarena rerun`
(a stored cell run again from its stored spec, its numbers compared)."""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from ecgarena import paths
from ecgarena.errors import UserError
from ecgarena.progress import console
from ecgarena.result import CellResult
from ecgarena.tables import dataset_label, select

from . import report_html as H
from .base import Home, app, store_of

COMPARED = (
    "clean",
    "adversarial",
    "fooling",
    "perturbation",
    "audit",
    "gate",
    "intervals",
    "targets",
)


def _figure(build: Any, caption: str, fmt: str = "svg") -> str:
    """A figure inline with its caption, or the reason it cannot be drawn."""
    from . import plots

    try:
        return f"<figure>{plots.inline(build(), fmt)}<figcaption>{H.esc(caption)}</figcaption></figure>"
    except UserError as e:
        return f'<p class="small">{H.esc(caption)}: not drawn ({H.esc(e)})</p>'


def _representative(cells: list[CellResult]) -> list[CellResult]:
    """Per attack, the done cell to draw: the largest budget, on `none` when it was run."""
    from .plots import max_budget

    best: dict[str, CellResult] = {}
    for r in sorted(cells, key=lambda r: (r.spec["defense"] == "none", max_budget(r))):
        best[r.spec["attack"]] = r  # the last, i.e. highest-ranked, wins
    return [best[a] for a in sorted(best)]


def _certified(cells: list[CellResult]) -> Any:
    """Certified accuracy against the radius, one line per certified defense."""
    import matplotlib.pyplot as plt

    lines = {r.spec["defense"]: r.certification for r in cells if r.certification}
    if not lines:
        raise UserError("no certified defense among these cells")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, cert in sorted(lines.items()):
        radii = sorted(cert.certified_accuracy, key=float)
        ax.plot(
            [float(x) for x in radii],
            [cert.certified_accuracy[x] for x in radii],
            marker="o",
            label=f"{name} ({cert.norm})",
        )
    ax.set_xlabel("radius (mV)")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _group(cells: list[CellResult], home: str) -> list[str]:
    """One dataset/model section: heatmaps per budget, curves, figures, tables, cells."""
    from . import plots

    done = [r for r in cells if r.status == "done"]
    out = []
    for eps in sorted(
        {H.eps_key(r) for r in cells}, key=lambda e: max(e) if isinstance(e, tuple) else e
    ):
        out.append(H.heatmap(cells, eps))
    if done:
        out.append(
            _figure(lambda: plots.sweep(done), "fooling rate against the budget, per defense")
        )
        out.append(_figure(lambda: _certified(done), "certified accuracy against the radius"))
    for r in _representative(done):
        what = f"{r.spec['attack']} on {r.spec['defense']}, ε {H.eps_text(r.spec['eps'])}"
        out.append(f"<h3>{H.esc(what)}</h3>")
        if r.artifact:
            out.append(
                _figure(
                    lambda r=r: plots.overlay(r), f"record 0, clean vs attacked ({what})", "png"
                )
            )
        out.append(_figure(lambda r=r: plots.psd(r), f"PSD of δ ({what})"))
        out.append(
            _figure(lambda r=r: plots.targets(r), f"where changed predictions went ({what})")
        )
    out += [H.ensemble_table(r) for r in done if r.ensemble]
    out.append("<h3>cells</h3>" + "".join(H.cell_details(r, home) for r in cells))
    return out


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="the HTML file to write")] = Path("report.html"),
    attack: Annotated[str | None, typer.Option(help="only this attack")] = None,
    dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
    home: Home = None,
) -> None:
    """Write one self-contained HTML file over the stored results (newest row per cell)."""
    rows = select(store_of(home).results(), attack=attack, dataset=dataset)
    if not rows:
        raise UserError("no stored result matches; run a cell or a matrix first")
    where = str(paths.home(home))
    groups: dict[tuple[str, str], list[CellResult]] = {}
    for r in rows:
        groups.setdefault((dataset_label(r.spec), r.spec["model"]), []).append(r)
    bad = sum(1 for r in rows if r.audit is not None and not r.passed)
    degenerate = sum(1 for r in rows if r.gate is not None and r.gate.degenerate)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        "<h1>ecgarena report</h1>",
        f"<p>{len(rows)} cells from <code>{H.esc(where)}</code>, written {stamp}. "
        f"<b>{bad}</b> violated their threat model, <b>{degenerate}</b> on a degenerate clean model, "
        f"{sum(r.status == 'failed' for r in rows)} failed.</p>",
    ]
    with console.status("drawing the report"):
        for (data, model), cells in sorted(groups.items()):
            body.append(f"<h2>{H.esc(data)} · {H.esc(model)}</h2>")
            body += _group(cells, where)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(H.page("ecgarena report", body), encoding="utf-8")
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(rows)} cells)")


def differences(old: CellResult, new: CellResult) -> list[str]:
    """The compared blocks that are not identical, each named."""
    return [f for f in COMPARED if getattr(old, f) != getattr(new, f)]


@app.command()
def rerun(
    key: Annotated[
        str, typer.Argument(help="a stored cell's key (ecgarena results --format json)")
    ],
    retrain: Annotated[
        bool,
        typer.Option(
            help="train the classifier again too (in a scratch folder), not load its weights"
        ),
    ] = False,
    home: Home = None,
) -> None:
    """Run a stored cell again from its stored spec and say whether its numbers match; the new
    row is stored beside the old. Exit 1 when they differ."""
    from ecgarena.cell import run_cell
    from ecgarena.host import get_host
    from ecgarena.matrix import record
    from ecgarena.provenance import versions
    from ecgarena.resources import Resources
    from ecgarena.specs import RunSpec

    store = store_of(home)
    old = store.latest_done(key)
    if old is None:
        raise UserError(
            f"no finished cell with key {key!r} in {store.path} (see `ecgarena results`)"
        )
    spec = RunSpec.model_validate(old.spec)
    with tempfile.TemporaryDirectory() as scratch:
        res = Resources(get_host(), Path(scratch) if retrain else paths.home(home))
        new = record(
            res, store, run_cell(spec, res), ["re-run of the stored cell (ecgarena rerun)"]
        )
    changed = differences(old, new)
    now = versions(get_host(), spec)
    moved = sorted(k for k in set(now) | set(old.versions) if now.get(k) != old.versions.get(k))
    if moved:
        console.print(f"[yellow]versions differ since the stored run: {', '.join(moved)}[/yellow]")
    if changed:
        console.print(
            f"[red]numbers differ[/red] in: {', '.join(changed)} (old and new rows are both stored)"
        )
        raise typer.Exit(1)
    console.print(f"[green]identical[/green]: {', '.join(COMPARED)} match the stored cell {key}")
