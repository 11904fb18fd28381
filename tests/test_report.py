"""`ecgarena report` in a real browser (headless Chromium through Playwright: no console error,
no request leaving the file, every figure decoded, a screenshot kept as a test artifact) and
`ecgarena rerun KEY` (the stored numbers reproduced, a changed row caught)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from ecgarena.cli import app
from ecgarena.store import Store
from typer.testing import CliRunner

ARTIFACTS = Path(
    os.environ.get("ECGARENA_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)
pytestmark = pytest.mark.xdist_group("report")  # one worker builds the matrix they share
MATRIX = [
    "matrix", "--defenses", "none,median", "--attacks", "fgsm,pgd", "--eps", "0.02,0.05",
    "--param", "synthetic.n_records=300", "--param", "pgd.steps=3", "--epochs", "1",
    "--max-records", "8",
]  # fmt: skip


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home holding the results of a small matrix (2 defenses × 2 attacks × 2 budgets)."""
    path = tmp_path_factory.mktemp("report-home")
    out = invoke(*MATRIX, "--home", str(path))
    assert out.exit_code == 0, out.output
    return path


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is absent (CI installs the Debian package `chromium`: .ci/run)")
    return found


def test_the_report_is_one_self_contained_file(home, tmp_path):
    out = invoke("report", "--home", str(home), "--out", str(tmp_path / "r.html"))
    assert out.exit_code == 0, out.output
    text = (tmp_path / "r.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)  # nothing fetched
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert text.count("<table><caption>ε = ") == 2  # one heatmap per budget
    assert text.count("ecgarena rerun ") == 8  # every cell says how to re-run it
    assert (
        "fooling rate against the budget, per defense" in text and "not drawn" in text
    )  # no certified
    bad = invoke("report", "--home", str(tmp_path / "empty"), "--out", str(tmp_path / "x.html"))
    assert bad.exit_code == 2 and "no stored result" in bad.output


def test_the_report_renders_in_headless_chromium(home, tmp_path):
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    assert invoke("report", "--home", str(home), "--out", str(path)).exit_code == 0
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1600})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        svgs, images = page.locator("figure svg").count(), page.locator("figure img").count()
        decoded = page.evaluate(
            "Array.from(document.images).every(i => i.complete && i.naturalWidth > 300)"
        )
        heatmaps = page.locator("table caption", has_text="attacked").count()
        violations = page.locator(".badge.violation").count()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
    assert errors == [], errors
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert svgs >= 5 and images == 2 and decoded  # sweep, PSD and targets ×2; 2 overlays
    assert heatmaps == 2 and violations == 0
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000


def test_rerun_reproduces_a_stored_cell_and_catches_a_changed_one(home):
    store = Store(home / "results.sqlite")
    first = store.results()[0]
    same = invoke("rerun", first.key, "--home", str(home))
    assert same.exit_code == 0 and "identical" in same.output, same.output
    retrained = invoke("rerun", first.key, "--retrain", "--home", str(home))
    assert retrained.exit_code == 0 and "identical" in retrained.output, retrained.output
    tampered = json.loads(first.model_dump_json())
    tampered["clean"]["accuracy"] = 0.123
    store.add(type(first).model_validate(tampered))  # the newest row no longer holds
    differ = invoke("rerun", first.key, "--home", str(home))
    assert differ.exit_code == 1 and "numbers differ in: clean" in differ.output, differ.output
    unknown = invoke("rerun", "0123456789abcdef", "--home", str(home))
    assert (
        unknown.exit_code == 2 and "no finished cell with key '0123456789abcdef'" in unknown.output
    )


def test_an_ensemble_cell_gets_its_p_at_least_k_table(home):
    from ecgarena.cli.report_html import ensemble_table
    from ecgarena.result import Ensemble

    cell = Store(home / "results.sqlite").results()[0]
    cell.ensemble = Ensemble(
        members=3,
        protocol="attack on the ensemble",
        member_accuracy={"clean": [0.8, 0.7, 0.75], "adversarial": [0.2, 0.3, 0.1]},
        at_least_k_correct={
            "clean": {1: 0.9, 2: 0.75, 3: 0.5},
            "adversarial": {1: 0.4, 2: 0.2, 3: 0.05},
        },
        at_least_k_interval={"clean": {1: [0.8, 0.95], 2: None, 3: [0.4, 0.6]}},
    )
    table = ensemble_table(cell)
    assert "P(≥ k of 3 members correct)" in table and "<th>k = 3</th>" in table
    assert "0.900 [0.800, 0.950]" in table and "<td>0.750</td>" in table and "0.050" in table
