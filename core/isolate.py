"""`--isolate`: the attack runs in a separate process that gets its own copy of the classifier
(rebuilt from the cached weights) and of the records, and returns only δ and the attack's
report of each call (checked here to be JSON dicts). The parent keeps the reference weights,
audits and evaluates, so nothing the attack does in its process (an in-place edit, a patched
audit function, damaged weights) can reach the numbers.

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

from .attack_call import json_report
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
) -> tuple[list[np.ndarray], list[dict[str, Any] | None]]:
    """Run `spec.attack` on the classifier of `spec` (or its ensemble `member`) in a child
    process, `batch` records per call as the engine does; returns δ and the attack's report
    (None: it returned bare δ) per batch."""
    with tempfile.TemporaryDirectory(prefix="ecgarena-isolate-") as tmp:
        folder = Path(tmp)
        request = {
            "home": str(home),
            "spec": spec.model_dump(mode="json"),
            "member": member,
            "threat": threat.model_dump(mode="json"),
            "batch": batch,
            "threads": torch.get_num_threads(),  # the parent's: the same numbers either way
        }
        (folder / "request.json").write_text(json.dumps(request))
        records = {"x": torch.from_numpy(np.ascontiguousarray(x, np.float32))}
        records["y"] = torch.from_numpy(np.ascontiguousarray(y))
        save_file(records, str(folder / "records.safetensors"))
        child = [sys.executable, "-m", "ecgarena.isolate_child", str(folder)]
        done = subprocess.run(child, check=False)
        error = folder / "error.txt"
        if done.returncode != 0 or not (folder / "deltas.safetensors").exists():
            reason = error.read_text().strip() if error.exists() else f"exit {done.returncode}"
            raise PluginError(f"isolated attack process for {spec.attack!r} failed: {reason}")
        tensors = load_file(str(folder / "deltas.safetensors"))
        deltas = [tensors[f"delta{i}"].numpy() for i in range(len(tensors))]
        raw = json.loads((folder / "reports.json").read_text())
    if not isinstance(raw, list) or len(raw) != len(deltas):
        raise PluginError(
            f"isolated attack process for {spec.attack!r} returned {type(raw).__name__} "
            f"reports for {len(deltas)} batches; expected one report (or null) per batch"
        )
    return deltas, [None if r is None else json_report(spec.attack, r) for r in raw]
