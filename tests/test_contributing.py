"""Every code block of CONTRIBUTING.md runs: the example packages are written from their
labelled blocks, pip-installed, their tests pass and their `ecgarena` commands succeed; loose
Python snippets execute; the set-up block is the README's install and test commands."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
RUN = "import sys; from ecgarena.cli import main; sys.argv = ['ecgarena', *sys.argv[1:]]; main()"
pytestmark = pytest.mark.xdist_group("contributing")  # one worker installs the examples once


@dataclass
class Block:
    lang: str
    label: str | None  # the file it is (the paragraph before starts "`path`:"), if any
    code: str
    line: int


def paragraph_before(lines: list[str], start: int) -> str:
    """The first line of the paragraph that ends just before line `start`."""
    j = start - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    while j > 0 and lines[j - 1].strip() and not lines[j - 1].startswith("```"):
        j -= 1
    return lines[j] if j >= 0 else ""


def blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, each with the file label before it."""
    out, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang, start = lines[i][3:].strip(), i
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            label = re.match(r"`([\w./-]+)`( —|:)", paragraph_before(lines, start))
            out.append(
                Block(lang, label and label.group(1), "\n".join(lines[i + 1 : end]), start + 1)
            )
            i = end
        i += 1
    return out


ALL = blocks((ROOT / "CONTRIBUTING.md").read_text())


def packages(root: Path) -> dict[str, Path]:
    """Write each example package (a tree block, then its labelled files) under `root`; every
    file of a tree must have its block."""
    made: dict[str, Path] = {}
    listed: dict[str, list[str]] = {}
    current: Path | None = None
    for b in ALL:
        first = b.code.split("\n")[0]
        if not b.lang and first.endswith("/"):
            current = made[first.rstrip("/")] = root / first.rstrip("/")
            listed[current.name] = re.findall(r"[└├]── (\S+)", b.code)
        elif b.label and current is not None:
            assert b.label in listed[current.name], (
                f"CONTRIBUTING.md:{b.line}: {b.label} not in its tree"
            )
            path = current / b.label
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(b.code + "\n")
    for name, path in made.items():
        missing = [f for f in listed[name] if not (path / f).is_file()]
        assert not missing, f"{name}: no block for {missing}"
    return made


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """The example packages written, pip-installed where the child processes see them."""
    root = tmp_path_factory.mktemp("contributing")
    made = packages(root)
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--target", str(site), *map(str, made.values())], check=True, capture_output=True
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    env.pop("ECGARENA_PLUGINS")  # every installed plugin, the examples included
    env["ECGARENA_HOME"] = str(root / "home")
    return made, env


def test_the_set_up_block_is_the_readmes(examples):
    readme = (ROOT / "README.md").read_text()
    setup = next(b for b in ALL if b.lang == "bash")
    for line in setup.code.splitlines():
        command = line.split("  #")[0].strip()
        if command.startswith(("pip install", "python -m pytest", "python3 -m venv")):
            assert command in readme, f"CONTRIBUTING set-up `{command}` differs from the README's"


def test_every_example_package_passes_its_own_tests(examples):
    made, env = examples
    for name, path in made.items():
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path / "tests")],
                             env=env, capture_output=True, text=True, cwd=path)  # fmt: skip
        assert out.returncode == 0, f"{name}: {out.stdout[-3000:]}"


def test_every_loose_python_block_executes(examples):
    _, env = examples
    loose = [b for b in ALL if b.lang == "python" and b.label is None]
    assert loose, "CONTRIBUTING.md has Python snippets"
    for b in loose:
        out = subprocess.run(
            [sys.executable, "-c", b.code], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, f"CONTRIBUTING.md:{b.line}: {out.stderr[-2000:]}"


def test_every_toml_block_parses():
    import tomllib

    parsed = [tomllib.loads(b.code) for b in ALL if b.lang == "toml"]
    assert len(parsed) >= 2 and all(p.get("project", {}).get("entry-points") for p in parsed)


def test_every_ecgarena_command_of_the_examples_succeeds(examples):
    made, env = examples
    commands = [
        line.split("  #")[0].strip()
        for b in ALL[1:]
        if b.lang == "bash"
        for line in b.code.splitlines()
        if line.startswith("ecgarena ")
    ]
    installs = [
        line
        for b in ALL[1:]
        if b.lang == "bash"
        for line in b.code.splitlines()
        if line.startswith("pip ")
    ]
    assert all(
        re.fullmatch(r"pip install -e (\S+)", i) and i.split()[-1] in made for i in installs
    ), installs
    assert len(commands) >= 3
    for command in commands:
        argv = shlex.split(command)[1:]
        out = subprocess.run(
            [sys.executable, "-c", RUN, *argv], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, f"`{command}`: {out.stderr[-2000:]}"


def test_the_readmes_run_toml_is_the_shipped_file():
    from ecgarena.specs import RunSpec

    readme = blocks((ROOT / "README.md").read_text())
    shown = next(b for b in readme if b.lang == "toml" and b.label == "recipes/run.toml")
    shipped = (ROOT / "recipes" / "run.toml").read_text()
    assert shown.code.strip() in shipped
    import tomllib

    RunSpec.model_validate(tomllib.loads(shipped))
