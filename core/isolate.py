"""`--isolate`: the attack runs in a separate process that gets its own copy of the classifier
(rebuilt from the cached weights) and of the records, and returns δ only. The parent keeps
the reference weights, audits and evaluates, so nothing the attack does in its process (an
in-place edit, a patched audit function, damaged weights) can reach the numbers.

It is not a sandbox: the attack's process runs with the user's permissions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import PluginError
from .specs import RunSpec, ThreatModel


def craft_isolated(
    home: Path,
    spec: RunSpec,
    member: int | None,
    threat: ThreatModel,
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
) -> tuple[list[np.ndarray], dict[str, Any] | None]:
    """Run `spec.attack` on the classifier of `spec` (or its ensemble `member`) in a child
    process, `batch` records per call as the engine does; returns δ per batch and the
    attack's report."""
    with tempfile.TemporaryDirectory(prefix="ecgarena-isolate-") as tmp:
        folder = Path(tmp)
        request = {
            "home": str(home),
            "spec": spec.model_dump(mode="json"),
            "member": member,
            "threat": threat.model_dump(mode="json"),
            "batch": batch,
        }
        (folder / "request.json").write_text(json.dumps(request))
        records = {"x": torch.from_numpy(np.ascontiguousarray(x, np.float32))}
        records["y"] = torch.from_numpy(np.ascontiguousarray(y))
        save_file(records, str(folder / "records.safetensors"))
        done = subprocess.run([sys.executable, "-m", "ecgarena.isolate", str(folder)], check=False)
        error = folder / "error.txt"
        if done.returncode != 0 or not (folder / "deltas.safetensors").exists():
            reason = error.read_text().strip() if error.exists() else f"exit {done.returncode}"
            raise PluginError(f"isolated attack process for {spec.attack!r} failed: {reason}")
        tensors = load_file(str(folder / "deltas.safetensors"))
        deltas = [tensors[f"delta{i}"].numpy() for i in range(len(tensors))]
        report = json.loads((folder / "report.json").read_text())
    return deltas, report


def _child(folder: Path) -> None:
    """The child: rebuild the classifier from cached weights, run the attack, write δ."""
    from .engine import Session, resolve_device
    from .host import get_host

    request = json.loads((folder / "request.json").read_text())
    spec = RunSpec.model_validate(request["spec"])
    session = Session(get_host(), Path(request["home"]))
    device = resolve_device(spec.device)
    clf, _ = session.classifier(spec, device, cached_only=True)
    target = clf if request["member"] is None else clf.members[request["member"]]
    attack = session.host.create("attacks", spec.attack, spec.attack_params)
    threat = ThreatModel.model_validate(request["threat"])
    ctx = session.attack_context(session.dataset(spec), device, spec)
    records = load_file(str(folder / "records.safetensors"))
    x, y, n = records["x"], records["y"], request["batch"]
    deltas = {}
    for i, start in enumerate(range(0, len(x), n)):
        xb, yb = x[start : start + n].to(device), y[start : start + n].to(device)
        delta = attack.run(target, xb, yb, threat, ctx)
        if not isinstance(delta, torch.Tensor):
            raise PluginError(f"attack {spec.attack!r} returned {type(delta).__name__}")
        deltas[f"delta{i}"] = delta.detach().cpu().contiguous()
    report = getattr(attack, "report", None)
    (folder / "report.json").write_text(json.dumps(report or None, default=str))
    save_file(deltas, str(folder / "deltas.safetensors"))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    try:
        _child(out)
    except Exception as e:  # the parent turns this into one line; the traceback goes to stderr
        (out / "error.txt").write_text(f"{type(e).__name__}: {e}")
        raise
