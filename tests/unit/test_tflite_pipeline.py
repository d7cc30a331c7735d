"""A user's .tflite model through `edgeml model compile` / `package` and answering in the app, the
packaging's ONNX Runtime-or-LiteRT pick from the latencies compile timed on this machine, and held-out
accuracy of litert-fp32 variants measured in LiteRT.

No model is downloaded: the .tflite files are written from the repository's digits ONNX model by
edgeml.model.zoo.tflite_export.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from inference_kit import DIGITS, bare_predictions, holdout, png

from edgeml.model.compile.latency import this_architecture
from edgeml.model.compile.local_run import LocalRequest, compile_local_variants
from edgeml.model.evaluate_litert import LitertAgreement, SamplesDoNotFit, fit_to_input
from edgeml.model.package import PackageRequest, package
from edgeml.model.runtime_pick import pick_runtime
from edgeml.model.targets import AARCH64, AMD64
from edgeml.model.variants import Variant, read_variants
from edgeml.model.zoo.tflite_export import onnx_to_tflite

MAIN = "from edgeml.cli import main; main()"


@pytest.fixture(scope="module")
def digits_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits.tflite with the digits model card beside it, as a user would hand them over."""
    root = tmp_path_factory.mktemp("user-model")
    shutil.copyfile(DIGITS / "model-card.json", root / "model-card.json")
    return onnx_to_tflite(DIGITS / "model.onnx", root / "digits.tflite")


def _metadata(zip_path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(zip_path) as archive:
        return dict(json.loads(archive.read("metadata.json")))


def _package(variants: Path, out: Path, assignments: dict[str, str] | None = None) -> dict[str, Path]:
    request = PackageRequest(
        variants, "Digits", "1.0.0", "bucket-for-tests", out, assignments=assignments or {}
    )
    return {item.platform.slot: item.zip_path for item in package(request).artifacts}


def test_a_tflite_model_is_packaged_as_it_is_and_answers_in_the_app(
    digits_tflite: Path, tmp_path: Path
) -> None:
    variant_set = compile_local_variants(LocalRequest(digits_tflite, ("litert-fp32",), tmp_path / "variants"))
    (variant,) = variant_set.variants
    assert (variant_set.source.framework, variant.framework, variant.target) == (
        "tflite",
        "tflite",
        "litert-fp32",
    )
    assert variant_set.source.input_shape == (1, 8, 8, 1)  # read from the flatbuffer by LiteRT
    assert (tmp_path / "variants" / variant.path).read_bytes() == digits_tflite.read_bytes()  # as it is

    zips = _package(tmp_path / "variants", tmp_path / "out")
    assert sorted(zips) == ["linux-aarch64", "linux-amd64"]  # CPU manifests only: LiteRT runs on the CPU
    metadata = _metadata(zips["linux-amd64"])
    assert (metadata["framework"], metadata["model_file"]) == ("tflite", "model.tflite")
    assert metadata["input"]["shape"] == [1, 8, 8, 1] and metadata["input"]["layout"] == "NHWC"
    assert metadata["preprocessing"]["layout"] == "NHWC"
    assert "runtime_choice" not in metadata  # nothing to choose between

    model_dir = tmp_path / "device"
    with zipfile.ZipFile(zips["linux-amd64"]) as archive:
        archive.extractall(model_dir)
    x, _ = holdout()
    app = InferenceApp(
        AppConfig(model_directory=str(model_dir), mode="microbatch", max_batch=8, model_poll_s=0)
    ).start()
    try:
        assert app.models.current.backend.name == "litert"  # checksums verified by the app's loader
        answers = [app.submit(png(x[index])).result(10) for index in range(40)]
    finally:
        app.stop()
    assert all(answer.ok for answer in answers), [answer.detail for answer in answers if not answer.ok][:3]
    got = [answer.prediction.class_index for answer in answers if answer.prediction is not None]
    assert got == bare_predictions(x[:40]).tolist()  # the ONNX model's own answers


def test_onnx_and_litert_variants_the_faster_one_on_this_machine_is_packaged(tmp_path: Path) -> None:
    request = LocalRequest(
        DIGITS / "model.onnx", ("cpu-opt", "litert-fp32"), tmp_path / "variants", (1, 1, 8, 8)
    )
    variants = {item.target: item for item in compile_local_variants(request).variants}
    assert variants["litert-fp32"].input_shape == (1, 8, 8, 1)  # written from ONNX: NHWC
    assert all(item.latency_ms and item.measured_on == this_architecture() for item in variants.values())
    faster = min(variants.values(), key=lambda item: item.latency_ms or 0.0).target

    zips = _package(tmp_path / "variants", tmp_path / "out")
    here = {"amd64": "linux-amd64", "aarch64": "linux-aarch64"}[this_architecture()]
    other = "linux-aarch64" if here == "linux-amd64" else "linux-amd64"
    choice = _metadata(zips[here])["runtime_choice"]
    assert choice["chosen"] == faster == _metadata(zips[here])["target"]
    assert {name: item["latency_ms"] for name, item in choice["candidates"].items()} == {
        name: item.latency_ms for name, item in variants.items()
    }
    # not timed on the other architecture: the preference order (ONNX) and the record says so
    assert _metadata(zips[other])["target"] == "cpu-opt"
    assert "not timed on" in _metadata(zips[other])["runtime_choice"]["rule"]
    assert _metadata(zips["linux-amd64-nvidia"])["framework"] == "onnx"  # GPU manifests: no LiteRT
    # --assign overrides the measurement, and records no choice
    assigned = _metadata(_package(tmp_path / "variants", tmp_path / "out2", {here: "litert-fp32"})[here])
    assert assigned["target"] == "litert-fp32" and "runtime_choice" not in assigned
    assert read_variants(tmp_path / "variants").source.framework == "onnx"


def test_litert_variants_are_scored_in_litert_like_the_onnx_ones_on_the_digits_holdout(
    digits_tflite: Path, tmp_path: Path
) -> None:
    agreements: list[LitertAgreement] = []
    request = LocalRequest(
        DIGITS / "model.onnx", ("cpu-fp32", "litert-fp32"), tmp_path / "v", (1, 1, 8, 8), "digits"
    )
    compiled = compile_local_variants(request, None, agreements.append)
    variants = {item.target: item for item in compiled.variants}
    onnx, litert = variants["cpu-fp32"], variants["litert-fp32"]
    assert onnx.accuracy_top1 is not None and litert.accuracy_top1 is not None
    assert litert.samples == onnx.samples == len(holdout()[1])
    one_sample = 1.0 / onnx.samples
    assert abs(litert.accuracy_top1 - onnx.accuracy_top1) <= one_sample + 1e-12
    (agreement,) = agreements  # written from ONNX: compared with its source in ONNX Runtime
    assert agreement.target == "litert-fp32" and agreement.samples == onnx.samples
    assert agreement.agreement >= 1.0 - one_sample
    assert (agreement.litert_accuracy, agreement.onnx_accuracy) == (litert.accuracy_top1, onnx.accuracy_top1)
    # the figure reaches the package's metadata (the model card the device and registry read)
    zips = _package(tmp_path / "v", tmp_path / "out", {"linux-amd64": "litert-fp32"})
    assert _metadata(zips["linux-amd64"])["accuracy"]["top1"] == litert.accuracy_top1

    # a .tflite source scored on the NCHW digits set: its NHWC input gets the samples transposed
    tflite_request = LocalRequest(digits_tflite, ("litert-fp32",), tmp_path / "t", dataset="digits")
    (as_it_is,) = compile_local_variants(tflite_request, None, agreements.append).variants
    assert as_it_is.accuracy_top1 is not None and as_it_is.samples == onnx.samples
    assert abs(as_it_is.accuracy_top1 - onnx.accuracy_top1) <= one_sample + 1e-12
    assert len(agreements) == 1  # nothing to compare a .tflite source with


def test_a_user_tflite_with_labelled_tensors_gets_its_accuracy_on_the_held_out_split(
    digits_tflite: Path, tmp_path: Path
) -> None:
    x, _ = holdout()
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # the user's tensors, in the model's layout
    answers = bare_predictions(x)
    scores = {}
    for name, labels in {"right": answers, "wrong": (answers + 1) % 10}.items():
        np.savez(tmp_path / f"{name}.npz", x=nhwc, y=labels)
        request = LocalRequest(
            digits_tflite, ("litert-fp32",), tmp_path / name, calibration=tmp_path / f"{name}.npz"
        )
        (variant,) = compile_local_variants(request).variants
        assert variant.samples == round(len(x) * 0.2)  # the default held-out fraction, not the whole set
        assert variant.accuracy_top1 is not None
        scores[name] = variant.accuracy_top1
    one_sample = 1.0 / round(len(x) * 0.2)
    assert scores["right"] >= 1.0 - one_sample and scores["wrong"] <= one_sample


def test_an_onnx_model_written_as_tflite_is_compared_with_its_source_on_unlabelled_held_out_tensors(
    tmp_path: Path,
) -> None:
    x, _ = holdout()
    np.save(tmp_path / "tensors.npy", x)  # the user's own inputs, no labels
    agreements: list[LitertAgreement] = []
    request = LocalRequest(
        DIGITS / "model.onnx",
        ("litert-fp32",),
        tmp_path / "v",
        (1, 1, 8, 8),
        calibration=tmp_path / "tensors.npy",
    )
    (variant,) = compile_local_variants(request, None, agreements.append).variants
    assert (variant.accuracy_top1, variant.samples) == (None, 0)  # no labels: no accuracy
    (agreement,) = agreements
    held_out = round(len(x) * 0.2)
    assert agreement.samples == held_out and agreement.agreement >= 1.0 - 1.0 / held_out
    assert (agreement.litert_accuracy, agreement.onnx_accuracy) == (None, None)
    assert "top-1 agreement" in agreement.summary() and "accuracy" not in agreement.summary()


def test_held_out_samples_fit_the_tflite_input_as_they_are_or_transposed_else_a_clear_error() -> None:
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert fit_to_input(nchw, (1, 3, 4, 5), "float32").shape == (2, 3, 4, 5)
    moved = fit_to_input(nchw, (1, 4, 5, 3), "float32")
    assert moved.shape == (2, 4, 5, 3) and moved[1, 2, 3, 0] == nchw[1, 0, 2, 3]
    assert fit_to_input(nchw * 10, (1, 4, 5, 3), "uint8").dtype == np.uint8
    with pytest.raises(SamplesDoNotFit, match=r"shape \[3, 4, 5\]; the .tflite input needs \[8, 8, 1\]"):
        fit_to_input(nchw, (1, 8, 8, 1), "float32")


def _variant(target: str, framework: str, latency: float | None, on: str | None) -> Variant:
    return Variant(target, framework, f"{target}.x", "none", None, 0, latency_ms=latency, measured_on=on)


def test_the_pick_is_the_lower_latency_only_where_it_was_measured() -> None:
    onnx, litert = _variant("cpu-opt", "onnx", 0.5, "amd64"), _variant("litert-fp32", "tflite", 0.3, "amd64")
    assert pick_runtime(AMD64, onnx, litert)[0] is litert
    faster_onnx = _variant("cpu-opt", "onnx", 0.2, "amd64")
    assert pick_runtime(AMD64, faster_onnx, litert)[0] is faster_onnx
    assert pick_runtime(AARCH64, onnx, litert)[0] is onnx  # measured on amd64 only
    assert pick_runtime(AMD64, onnx, _variant("litert-fp32", "tflite", None, None))[0] is onnx
    assert pick_runtime(AMD64, None, litert) == (litert, None)


def _edgeml(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@pytest.mark.slow
def test_cli_compiles_a_tflite_by_default_as_it_is_and_refuses_onnx_targets_and_garbage(
    digits_tflite: Path, tmp_path: Path
) -> None:
    refused = _edgeml("model", "compile", digits_tflite, "--out", tmp_path / "v", "-t", "cpu-int8")
    assert refused.returncode == 1 and "cpu-int8 needs an ONNX source" in refused.stderr
    assert refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    garbage = tmp_path / "broken.tflite"
    garbage.write_bytes(np.arange(64, dtype=np.uint8).tobytes())
    broken = _edgeml("model", "compile", garbage, "--out", tmp_path / "v")
    assert (
        broken.returncode == 1
        and "LiteRT cannot load it" in broken.stderr
        and "Traceback" not in broken.stderr
    )
    assert not (tmp_path / "v").exists()
    compiled = _edgeml("model", "compile", digits_tflite, "--out", tmp_path / "v")  # no -t: litert-fp32
    assert compiled.returncode == 0, compiled.stderr
    assert [item.target for item in read_variants(tmp_path / "v").variants] == ["litert-fp32"]


@pytest.mark.slow
def test_cli_compile_prints_litert_accuracy_beside_onnx_and_its_agreement_with_the_source(
    tmp_path: Path,
) -> None:
    compiled = _edgeml(
        "model", "compile", DIGITS / "model.onnx", "--input-shape", "1,1,8,8", "--dataset", "digits",
        "-t", "cpu-fp32", "-t", "litert-fp32", "--out", tmp_path / "v",
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    recorded = {item.target: item.accuracy_top1 for item in read_variants(tmp_path / "v").variants}
    rows = {
        cells[0]: cells[3]
        for line in compiled.stdout.splitlines()
        if len(cells := [cell.strip() for cell in line.strip("│ ").split("│")]) == 5
    }
    assert rows["litert-fp32"] == f"{recorded['litert-fp32']:.4f}" and rows["cpu-fp32"] != "-"
    samples = len(holdout()[1])
    assert "litert-fp32 (LiteRT) vs the ONNX source (ONNX Runtime, FP32): top-1 agreement" in compiled.stderr
    assert f"on {samples} held-out samples; accuracy LiteRT" in compiled.stderr
