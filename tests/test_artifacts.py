"""Content-verified files of the home folder: any flipped byte or truncation of a weights file,
a universal perturbation or a plot record is detected, rebuilt and said, or named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ecgarena.artifacts import ArtifactError, read_tensors, save_tensors
from ecgarena.cell import run_cell
from ecgarena.cli import app
from ecgarena.host import Host
from ecgarena.resources import Resources
from ecgarena.specs import RunSpec, TrainSpec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

SMALL = {"dataset_params": {"n_records": 300}, "train": TrainSpec(epochs=1)}


def written(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "a.safetensors"
    tensors = {"w": torch.arange(64, dtype=torch.float32).reshape(8, 8), "b": torch.ones(3)}
    save_tensors(path, tensors, {"spec": '{"k": 1}'})
    return path, path.read_bytes()


def test_a_written_file_reads_back_with_its_metadata(tmp_path):
    path, _ = written(tmp_path)
    tensors, meta = read_tensors(path)
    assert torch.equal(tensors["w"], torch.arange(64, dtype=torch.float32).reshape(8, 8))
    assert meta == {"spec": '{"k": 1}'}
    assert not list(tmp_path.glob("*.tmp"))  # atomic: no temporary file left behind


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_is_detected(tmp_path, data):
    path, original = written(tmp_path)
    at = data.draw(st.integers(0, len(original) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(original)
    flipped[at] ^= 1 << bit
    path.write_bytes(bytes(flipped))
    try:
        tensors, meta = read_tensors(path)
    except ArtifactError:
        return
    # the only undetectable flips are those that leave the parsed content identical
    assert meta == {"spec": '{"k": 1}'} and torch.equal(tensors["b"], torch.ones(3))
    assert torch.equal(tensors["w"], torch.arange(64, dtype=torch.float32).reshape(8, 8))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_truncation_is_detected(tmp_path, data):
    path, original = written(tmp_path)
    keep = data.draw(st.integers(0, len(original) - 1))
    path.write_bytes(original[:keep])
    with pytest.raises(ArtifactError, match="unreadable or truncated|failed its SHA-256"):
        read_tensors(path)


def test_a_file_without_a_digest_is_not_trusted(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "old.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(ArtifactError, match="carries no content digest"):
        read_tensors(path)


@pytest.fixture(scope="module")
def host() -> Host:
    return Host()


def corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "flip":
        body = bytearray(data)
        body[-5] ^= 0xFF
        path.write_bytes(bytes(body))
    else:
        path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_tampered_weights_are_retrained_and_said(host, tmp_path, how):
    spec = RunSpec(attack="fgsm", **SMALL)
    first = run_cell(spec, Resources(host, tmp_path))
    corrupt(Path(first.training.weights), how)
    again = run_cell(spec, Resources(host, tmp_path))
    assert again.training.cached is False  # never loaded: trained again
    assert any("weights" in w and "retrained" in w for w in again.warnings), again.warnings
    assert again.clean == first.clean  # the same seed retrains the same model
    third = run_cell(spec, Resources(host, tmp_path))
    assert third.training.cached is True and not any("retrained" in w for w in third.warnings)


def test_a_tampered_universal_perturbation_is_fitted_again_and_said(host, tmp_path):
    spec = RunSpec(attack="universal-deepfool", eps=0.05, max_attack_records=16, **SMALL)
    first = run_cell(spec, Resources(host, tmp_path))
    stored = Path(first.universal_perturbation["file"])
    corrupt(stored, "flip")
    again = run_cell(spec, Resources(host, tmp_path))
    assert again.universal_perturbation["reused"] is False
    assert any("SHA-256" in w and "fitted again" in w for w in again.warnings), again.warnings
    assert run_cell(spec, Resources(host, tmp_path)).universal_perturbation["reused"] is True


def test_plot_of_a_tampered_record_file_is_one_line_exit_2(tmp_path):
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    out = runner.invoke(app, ["run", "--attack", "fgsm", "--epochs", "1", *home])
    assert out.exit_code == 0, out.output
    (artifact,) = (tmp_path / "artifacts").glob("*.safetensors")
    corrupt(artifact, "flip")
    out = runner.invoke(app, ["plot", "overlay", "--out", str(tmp_path / "o.png"), *home])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "failed its SHA-256 check" in out.output and str(artifact.name) in out.output


def test_a_universal_attack_is_fitted_once_and_applied_to_every_record(host, tmp_path):
    """More records than one attack batch: one fit, one v for all, the stored v reused."""
    cls = host.get("attacks", "universal-deepfool").cls
    calls = []
    original = cls.run

    def counted(self, *args, **kwargs):
        calls.append(args[1].shape[0])
        return original(self, *args, **kwargs)

    options = {"max_passes": 1, "batch": 16, "max_records": 64}
    spec = RunSpec(
        attack="universal-deepfool",
        attack_params=options,
        eps=0.05,
        dataset_params={"n_records": 1400},  # 140 test records: two attack batches
        train=TrainSpec(epochs=1),
    )
    cls.run = counted
    try:
        first = run_cell(spec, Resources(host, tmp_path))
    finally:
        cls.run = original
    assert first.status == "done" and calls == [128]  # one call, not one per batch
    v = read_tensors(Path(first.universal_perturbation["file"]))[0]["delta"]
    assert tuple(v.shape) == (1, 12, 1000)
    assert first.perturbation.linf_mv == pytest.approx(float(v.abs().max()))
    again = run_cell(spec, Resources(host, tmp_path))  # the stored v on all 140 records
    assert again.universal_perturbation["reused"] is True
    assert again.perturbation == first.perturbation  # so the first run gave all records v
    assert (again.adversarial, again.fooling) == (first.adversarial, first.fooling)
