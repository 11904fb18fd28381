"""The child process of `--isolate` (`python -m ecgarena.isolate_child FOLDER`): rebuild the
classifier from cached weights, run the attack on the records in FOLDER, write δ and the
attack's report of each batch call there. Kept apart from `ecgarena.isolate` so the parent
side never imports the cell pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .attack_call import unpack
from .host import get_host
from .resources import Resources, resolve_device, set_precision
from .specs import RunSpec, ThreatModel


def main(folder: Path) -> None:
    """The child: rebuild the classifier from cached weights, run the attack, write δ and
    the reports."""
    request = json.loads((folder / "request.json").read_text())
    torch.set_num_threads(request["threads"])
    spec = RunSpec.model_validate(request["spec"])
    res = Resources(get_host(), Path(request["home"]))
    device = resolve_device(spec.device)
    clf, _ = res.classifier(spec, device, cached_only=True)
    set_precision(clf, spec.precision)
    target = clf if request["member"] is None else clf.members[request["member"]]
    attack = res.host.create("attacks", spec.attack, spec.attack_params)
    threat = ThreatModel.model_validate(request["threat"])
    ctx = res.attack_context(spec, device)
    records = load_file(str(folder / "records.safetensors"))
    x, y, n = records["x"], records["y"], request["batch"]
    deltas, reports = {}, []
    for i, start in enumerate(range(0, len(x), n)):
        xb, yb = x[start : start + n].to(device), y[start : start + n].to(device)
        delta, report = unpack(spec.attack, attack.run(target, xb, yb, threat, ctx))
        deltas[f"delta{i}"] = delta.detach().cpu().contiguous()
        reports.append(report)
    (folder / "reports.json").write_text(json.dumps(reports))
    save_file(deltas, str(folder / "deltas.safetensors"))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    try:
        main(out)
    except Exception as e:  # the parent turns this into one line; the traceback goes to stderr
        (out / "error.txt").write_text(f"{type(e).__name__}: {e}")
        raise
