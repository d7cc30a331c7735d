"""Loading the real digits model: metadata, sha256 verification, version resolution, backends."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from edgeml_inference.backends.onnxruntime import choose_providers
from edgeml_inference.exceptions import BackendUnavailable, ModelLoadError
from edgeml_inference.metadata import resolve_model_directory
from edgeml_inference.model import load_model
from inference_kit import DIGITS, bare_predictions, holdout, write_model_dir


def test_loads_and_answers_like_the_bare_session(tmp_path: Path) -> None:
    model = load_model(write_model_dir(tmp_path / "m"))
    x, _ = holdout()
    logits = model.backend.run(x[:64])
    assert np.array_equal(np.argmax(logits, axis=1), bare_predictions(x[:64]))
    assert model.metadata.labels == tuple(str(digit) for digit in range(10))
    assert model.backend.providers == ("CPUExecutionProvider",)


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    directory = write_model_dir(tmp_path / "m")
    with (directory / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model(directory)


def test_a_missing_listed_file_is_refused(tmp_path: Path) -> None:
    directory = write_model_dir(tmp_path / "m")
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["files"]["labels.json"] = "0" * 64
    (directory / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelLoadError, match=r"labels\.json"):
        load_model(directory)


@pytest.mark.parametrize("schema", ["edgeml.model-metadata/2", None])
def test_metadata_of_another_schema_version_is_refused_by_name(tmp_path: Path, schema: str | None) -> None:
    directory = write_model_dir(tmp_path / "m")
    metadata = json.loads((directory / "metadata.json").read_text())
    if schema is None:
        del metadata["schema"]
    else:
        metadata["schema"] = schema
    (directory / "metadata.json").write_text(json.dumps(metadata))
    found = "no schema" if schema is None else repr(schema)
    with pytest.raises(ModelLoadError, match=f"{found}.*this app reads 'edgeml.model-metadata/1'"):
        load_model(directory)


def test_the_newest_version_under_a_component_root_is_chosen(tmp_path: Path) -> None:
    write_model_dir(tmp_path / "1.0.0" / "linux-amd64", version="1.0.0")
    write_model_dir(tmp_path / "1.10.0" / "linux-amd64", version="1.10.0")
    write_model_dir(tmp_path / "1.2.0" / "linux-amd64", version="1.2.0")
    assert resolve_model_directory(tmp_path) == tmp_path / "1.10.0" / "linux-amd64"


def test_unavailable_execution_providers_fall_back_to_cpu_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        chosen = choose_providers(("TensorRT", "CUDA", "CPU"), ["CPUExecutionProvider"])
    assert chosen == ["CPUExecutionProvider"]
    assert "TensorRT" in caplog.text and "CUDA" in caplog.text


def test_available_providers_keep_their_order() -> None:
    available = ["CUDAExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(("OpenVINO", "CUDA"), available) == [
        "OpenVINOExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_loading_with_cuda_configured_runs_on_cpu_here(tmp_path: Path) -> None:
    model = load_model(write_model_dir(tmp_path / "m"), providers=("CUDA", "CPU"))
    assert "CPUExecutionProvider" in model.backend.providers


def test_a_neo_artifact_without_dlr_installed_says_so(tmp_path: Path) -> None:
    directory = write_model_dir(tmp_path / "m", framework="dlr")
    with pytest.raises(ModelLoadError) as raised:
        load_model(directory)
    assert isinstance(raised.value.__cause__, BackendUnavailable)
    assert "dlr" in str(raised.value)


def test_the_committed_model_is_what_the_kit_copies() -> None:
    assert (DIGITS / "model.onnx").stat().st_size > 0


def test_a_neo_artifact_runs_through_dlr_at_its_compiled_batch_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlr is not installable here: a stand-in module with DLRModel's interface runs the same ONNX graph,
    compiled (as Neo does) for batch 1, so a batch of 5 runs as 5 padded chunks."""
    import sys
    import types

    import onnxruntime as ort
    from edgeml_inference.pipeline import run_batched

    seen: list[tuple[str, str, tuple[int, ...]]] = []

    class DLRModel:
        def __init__(self, model_dir: str, device: str) -> None:
            self.session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"))
            self.device = device

        def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            ((name, batch),) = feed.items()
            assert batch.shape[0] == 1, "compiled for batch 1"
            seen.append((name, self.device, batch.shape))
            return list(self.session.run(None, {"input": batch}))

    monkeypatch.setitem(sys.modules, "dlr", types.SimpleNamespace(DLRModel=DLRModel))
    directory = write_model_dir(tmp_path / "neo", framework="dlr")
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["model_file"] = "."
    (directory / "metadata.json").write_text(json.dumps(metadata))
    model = load_model(directory)
    assert model.backend.name == "dlr" and model.backend.fixed_batch == 1
    x, _ = holdout()
    outputs = run_batched(model, x[:5])
    assert np.array_equal(np.argmax(outputs, axis=1), bare_predictions(x[:5]))
    assert {device for _, device, _ in seen} == {"cpu"} and {name for name, _, _ in seen} == {"input"}


@pytest.mark.parametrize(("threads", "spinning"), [(1, None), (2, "0"), (0, "0")])
def test_onnx_runtime_pool_threads_do_not_spin_on_a_shared_device(
    tmp_path: Path, threads: int, spinning: str | None
) -> None:
    # a spinning ORT pool took the cores the sinks and the nucleus need: 12.1 vs 6.2 ms a frame on 2 cores
    model = load_model(write_model_dir(tmp_path / "digits"), intra_op_threads=threads)
    options = model.backend.session.get_session_options()  # type: ignore[attr-defined]
    try:
        entry: str | None = options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: ORT's default (one thread has no pool to spin)
        entry = None
    assert entry == spinning
    x, _ = holdout()
    assert model.backend.run(x[:4]).shape == (4, 10)
