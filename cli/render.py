"""Rich rendering of results, plugins and datasets (stdout), kept apart from command parsing."""

from __future__ import annotations

import json
from typing import Any

from ecgarena.result import CellResult
from ecgarena.tables import cutoff_label, dataset_label, summary_row
from ecgarena.units import format_mv
from rich.console import Console
from rich.table import Table
from rich.text import Text


def show(renderable: Any) -> None:
    """Print to stdout with a console made now, so the terminal width (COLUMNS) is current."""
    Console(soft_wrap=True).print(renderable)


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def with_interval(value: Any, bounds: list[float] | None) -> str:
    """A metric and its bootstrap interval: `0.605 [0.530, 0.670]`."""
    return fmt(value) + ("" if not bounds else f" [{bounds[0]:.3f}, {bounds[1]:.3f}]")


def eps_text(eps: Any) -> str:
    return "/".join(format_mv(e) for e in eps) if isinstance(eps, list) else format_mv(eps)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, allow_nan=False))


def run_result(result: CellResult) -> None:
    """A clean-vs-adversarial table, then audit, warnings and timings of one cell."""
    spec = result.spec
    title = (
        f"{dataset_label(spec)} · {spec['model']} · defense {spec['defense']} · attack {spec['attack']}"
        f" · ε {eps_text(spec['eps'])} · seed {spec['seed']} · {result.device or '?'}"
    )
    if result.source:
        title += f" · transfer from {result.source['model']}/{result.source['defense']}"
    if result.status == "failed" or not (result.clean and result.adversarial and result.audit):
        show(Text(f"FAILED {title}: {result.error}", style="red"))
        return
    if result.gate and result.gate.degenerate:
        show(
            "[bold white on red] DEGENERATE CLEAN MODEL [/bold white on red] [bold red]"
            "the robustness numbers below mean nothing:[/bold red] "
            + "; ".join(result.gate.reasons)
        )
    table = Table(title=title)
    ci = result.intervals.model_dump() if result.intervals else {}
    trivial = result.trivial or {}
    for name in ("metric", "clean [95% CI]", "adversarial [95% CI]", "trivial"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    clean, adv = result.clean.model_dump(), result.adversarial.model_dump()
    rule = (result.thresholds or {}).get("macro_f1", "")
    decided = "abstain_rate" in clean  # a decision rule of the defense's own (PREDICT)
    labels = {
        "accuracy": "accuracy"
        + (" (exact set)" if result.task == "multilabel" else "")
        + (f" ({rule})" if decided else ""),
        "macro_f1": "macro_f1" + (" (p > 0.5)" if "macro_f1_tuned" in clean else ""),
        "macro_f1_tuned": "macro_f1 (val-tuned thresholds)",
        "macro_auc": "macro_auc" + (" (soft classifier)" if decided else ""),
        "abstain_rate": "abstain rate",
    }
    for key, label in labels.items():
        if key in clean:
            table.add_row(
                label,
                with_interval(clean[key], (ci.get("clean") or {}).get(key)),
                with_interval(adv.get(key), (ci.get("adversarial") or {}).get(key)),
                fmt(trivial.get("macro_f1" if key == "macro_f1_tuned" else key))
                if key != "abstain_rate"
                else "",
            )
    for cls, f1 in clean["per_class_f1"].items():
        table.add_row(f"F1 {cls}", fmt(f1), fmt(adv["per_class_f1"][cls]), "")
    fool, pert = result.fooling, result.perturbation
    rate = fool.fooling_rate if fool else None
    table.add_row("fooling rate", "", with_interval(rate, ci.get("fooling_rate")))
    if pert:
        table.add_row("ℓ∞ / mean ℓ2 (mV)", "", f"{pert.linf_mv:.4f} / {pert.l2_mv:.4f}")
        table.add_row("median SNR (dB)", "", fmt(pert.snr_db))
        if pert.ssim is not None:
            table.add_row("SSIM (mean / min)", "", f"{pert.ssim:.3f} / {fmt(pert.ssim_min)}")
    tg = result.targets or {}
    if tg.get("top_class"):
        verb = "gained" if "gained" in tg else "moved to"
        table.add_row(
            "records whose prediction changed",
            "",
            f"{tg['n_changed']} of {result.adversarial.n}; "
            f"{tg['top_share']:.0%} of those {verb} {tg['top_class']}",
        )
    if pert:
        table.add_row(f"δ energy > {cutoff_label(result)}", "", f"{pert.energy_above_cutoff:.2%}")
    show(table)
    if trivial:
        show(
            f"trivial baseline: {trivial['predictor']}; intervals: "
            + (
                f"{ci['resamples']} bootstrap resamples of records, seed {ci['seed']}"
                if ci.get("resamples")
                else ci.get("reason", "none")
            )
        )
    audit = result.audit
    if audit.passed:
        show("[green]audit: pass[/green] (" + ", ".join(c.name for c in audit.checks) + ")")
    else:
        bad = [f"{c.name}: {c.detail}" for c in audit.checks if not c.passed]
        show("[bold red]audit: VIOLATION[/bold red] — " + "; ".join(bad))
    cert = result.certification
    if cert:
        curve = ", ".join(
            f"{r} mV {fmt(a)}"
            for r, a in cert.certified_accuracy.items()
            if r in ("0.01", "0.05", "0.1", "0.2", "0.5")
        )
        passes = getattr(cert, "forward_passes_per_record", "?")
        show(
            f"certified ({'ℓ∞' if cert.norm == 'linf' else 'ℓ2'}, {cert.n} records, {passes}"
            f" passes each): accuracy {fmt(cert.accuracy)}, abstain {fmt(cert.abstain_rate)},"
            f" median radius {fmt(cert.median_radius_mv)} mV; certified accuracy at {curve}"
        )
        size = getattr(cert, "attack_delta_mv", None)
        if size:
            show(
                f"the attack's δ in that norm: median {size['median']:.3f} mV, max"
                f" {size['max']:.3f} mV; right and certified beyond each record's own δ:"
                f" {size['certified_accuracy_at_it']:.1%}"
            )
    ens = result.ensemble
    if ens:
        accs = ens.member_accuracy
        show(
            f"ensemble of {ens.members}: member accuracy clean "
            + " / ".join(f"{a:.2f}" for a in accs["clean"])
            + ", attacked "
            + " / ".join(f"{a:.2f}" for a in accs["adversarial"])
            + "; attacked P(≥k correct) "
            + at_least_k_text(ens.model_dump())
            + " (white-box on the ensemble)"
        )
        m0 = ens.member0_protocol
        if m0:
            show(
                f"crafted on member 0 (DNA protocol, {m0['records']} of {m0['of']} records member"
                f" 0 gets right): average {m0['average']:.2f}, P(≥k correct) " + at_least_k_text(m0)
            )
    for w in result.warnings:
        show(f"[yellow]warning:[/yellow] {w}")
    for path, why in result.nulls.items():
        show(f"[dim]{path} is null: {why}[/dim]")
    t = result.timings
    if t is None:
        return
    cached = " (cached weights)" if result.training and result.training.cached else ""
    show(
        f"timings: data {t.data_s:.1f}s · train {t.train_s:.1f}s{cached} · clean "
        f"{t.clean_eval_s:.1f}s · attack {t.attack_s:.1f}s · total {t.total_s:.1f}s"
        + (" · [dim]stored result, --force re-runs[/dim]" if result.status == "skipped" else "")
    )


def at_least_k_text(block: dict[str, Any]) -> str:
    """Attacked P(≥k correct) for each k with its Wilson interval where one is stored."""
    values = block["at_least_k_correct"]["adversarial"]
    bounds = block.get("at_least_k_interval", {}).get("adversarial", {})
    return ", ".join(
        f"k={k}: {v:.2f}" + (" [{:.2f}, {:.2f}]".format(*bounds[k]) if bounds.get(k) else "")
        for k, v in values.items()
    )


def plan_table(work: Any, states: list[tuple[CellResult | None, str | None]]) -> None:
    """A matrix's plan: its train tasks and, per cell, what it needs and whether it will run."""
    show(f"{len(work.trains)} classifier(s) to train or load, {len(work.cells)} cell(s)")
    table = Table(title="plan")
    for c in ("cell", "ε", "seed", "needs", "state"):
        table.add_column(c, overflow="fold")
    for task, (stored, why) in zip(work.cells, states):
        s = task.spec
        src = f" (from {s.source_model}/{s.source_defense or s.defense})" if s.transfer else ""
        state = "stored" if stored else (f"re-run: {why}" if why else "to run")
        needs = ", ".join(k[:8] for k in task.needs)
        table.add_row(
            f"{s.dataset}/{s.model}/{s.defense}/{s.attack}{src}",
            eps_text(s.eps),
            str(s.seed),
            needs,
            state,
        )
    show(table)


def results_table(results: list[CellResult], title: str = "results") -> None:
    """One row per cell, as `ecgarena results` and the matrix summary show them."""
    table = Table(title=title)
    cols = (
        "data/model",
        "defense",
        "attack",
        "ε",
        "seed",
        "metric",
        "clean",
        "adv",
        "fooling",
        "audit",
        "clean model",
        "status",
    )
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in results:
        row = summary_row(r)
        table.add_row(
            f"{row['dataset']}/{row['model']}"
            + (f" (from {row['source']})" if row["source"] else ""),
            row["defense"],
            row["attack"],
            eps_text(row["eps_mv"]),
            str(row["seed"]),
            row["metric"],
            fmt(row["clean"]),
            fmt(row["adversarial"]),
            fmt(row["fooling_rate"]),
            row["audit"] if row["audit"] != "VIOLATION" else "[bold red]VIOLATION[/bold red]",
            "[bold red]DEGENERATE[/bold red]" if row["gate"] == "degenerate" else row["gate"],
            row["status"],
        )
    show(table)
    for r in results:
        if r.status == "failed":
            show(Text(f"failed {r.spec['defense']}/{r.spec['attack']}: {r.error}", style="red"))


def aggregate_text(v: dict[str, Any], digits: int = 3) -> str:
    """`mean ± std` over seeds; one seed: its bootstrap interval, or `± n/a`."""
    if v["mean"] is None:
        return "-"
    mean = f"{v['mean']:.{digits}f}"
    if v["std"] is not None:
        return f"{mean} ± {v['std']:.{digits}f}"
    if v["ci"]:
        return f"{mean} [{v['ci'][0]:.{digits}f}, {v['ci'][1]:.{digits}f}]"
    return f"{mean} ± n/a"


def pivot_table(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    title: str,
    markdown: bool = False,
) -> None:
    """Defenses as rows, aggregated metrics (mean ± std over seeds) as `columns`."""

    def cell(c: str, v: Any) -> str:
        if isinstance(v, dict):
            return aggregate_text(v, 1 if c == "gap %" else 3)
        if c == "clean model" and str(v).startswith("DEGENERATE") and not markdown:
            return f"[bold red]{v}[/bold red]"
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    head = ("dataset/model", "defense", "attack", "ε", *columns)
    body = [
        (
            f"{r['dataset']}/{r['model']}",
            r["defense"],
            r["attack"],
            eps_text(r["eps_mv"])
            if r["eps_mv"] is not None
            else ("grid" if "ε grid (mV)" in r else "-"),
            *(cell(c, r[c]) for c in columns),
        )
        for r in rows
    ]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for b in body:
            print("| " + " | ".join(b) + " |")
        return
    table = Table(title=title)
    for c in head:
        table.add_column(c, justify="right" if c in columns else "left")
    for b in body:
        table.add_row(*b)
    show(table)
