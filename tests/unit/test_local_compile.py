"""Local compile of the digits model: each variant, its accuracy, and bad input leaving nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeml.errors import EdgemlError
from edgeml.model.compile import local as local_compile
from edgeml.model.compile.local import (
    LOCAL_TARGETS,
    CalibrationShapeMismatch,
    LocalVariant,
    MissingCalibration,
    compile_local,
)
from edgeml.model.datasets import LabelledSet, digits_split
from edgeml.model.evaluate import cpu_session, predict_logits
from edgeml.model.signature import DynamicInputShape, NotAnOnnxModel, read_signature
from edgeml.model.targets import UnknownTarget

DIGITS = Path(__file__).resolve().parents[2] / "models" / "digits" / "model.onnx"
SHAPE = (1, 1, 8, 8)


@pytest.fixture(scope="module")
def split() -> tuple[LabelledSet, LabelledSet, LabelledSet]:
    return digits_split(seed=0)


@pytest.fixture(scope="module")
def compiled(
    tmp_path_factory: pytest.TempPathFactory, split: tuple[LabelledSet, LabelledSet, LabelledSet]
) -> dict[str, LocalVariant]:
    _, calibration, holdout = split
    out_dir = tmp_path_factory.mktemp("compiled") / "variants"
    variants = compile_local(
        DIGITS, out_dir, targets=LOCAL_TARGETS, calibration=calibration.x, holdout=holdout, input_shape=SHAPE
    )
    return {variant.target: variant for variant in variants}


def _entries(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_every_local_target_produces_a_runnable_variant_with_the_source_signature(
    compiled: dict[str, LocalVariant], split: tuple[LabelledSet, LabelledSet, LabelledSet]
) -> None:
    assert list(compiled) == list(LOCAL_TARGETS)
    out_dir = compiled["cpu-fp32"].path.parent
    assert _entries(out_dir) == sorted(f"{target}.onnx" for target in LOCAL_TARGETS)
    assert not [path for path in out_dir.parent.iterdir() if path.name.startswith(".")]  # no staging left
    source = read_signature(DIGITS, SHAPE)
    for variant in compiled.values():
        assert read_signature(variant.path, SHAPE) == source
        assert variant.samples == len(split[2])
        assert variant.accuracy_top1 is not None and variant.accuracy_top1 >= 0.96
    assert {target: variant.quantisation for target, variant in compiled.items()} == {
        "cpu-fp32": "none",
        "cpu-opt": "none",
        "cpu-fp16": "fp16",
        "cpu-int8": "int8-qdq",
    }


def test_int8_loses_at_most_one_point_of_held_out_accuracy(compiled: dict[str, LocalVariant]) -> None:
    fp32, int8 = compiled["cpu-fp32"].accuracy_top1, compiled["cpu-int8"].accuracy_top1
    assert fp32 is not None and int8 is not None
    assert fp32 - int8 <= 0.01


def test_int8_variant_is_quantised_in_qdq_form(compiled: dict[str, LocalVariant]) -> None:
    model = onnx.load(str(compiled["cpu-int8"].path))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [init for init in model.graph.initializer if init.data_type == TensorProto.INT8]
    assert len(int8_weights) >= 4  # both convolutions and both dense layers
    assert compiled["cpu-int8"].path.stat().st_size < 0.5 * DIGITS.stat().st_size


def test_fp16_variant_has_float16_weights_and_float32_io(compiled: dict[str, LocalVariant]) -> None:
    model = onnx.load(str(compiled["cpu-fp16"].path))
    float_weights = [init for init in model.graph.initializer if init.data_type != TensorProto.INT64]
    assert float_weights and all(init.data_type == TensorProto.FLOAT16 for init in float_weights)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_optimised_variant_is_portable_and_agrees_with_fp32(
    compiled: dict[str, LocalVariant], split: tuple[LabelledSet, LabelledSet, LabelledSet]
) -> None:
    model = onnx.load(str(compiled["cpu-opt"].path))
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}  # no EP-specific contrib ops
    holdout = split[2]
    optimised = predict_logits(cpu_session(compiled["cpu-opt"].path), holdout.x, batch=32)
    reference = predict_logits(cpu_session(DIGITS), holdout.x, batch=32)
    np.testing.assert_allclose(optimised, reference, rtol=1e-4, atol=1e-4)


def test_variants_keep_the_dynamic_batch_dimension(compiled: dict[str, LocalVariant]) -> None:
    rows = np.zeros((32, *SHAPE[1:]), np.float32)
    for variant in compiled.values():
        session = cpu_session(variant.path)
        assert session.run(None, {"input": rows})[0].shape == (32, 10)


def test_defaults_compile_opt_and_int8_without_accuracy_when_no_holdout(
    tmp_path: Path, split: tuple[LabelledSet, LabelledSet, LabelledSet]
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    variants = compile_local(DIGITS, out_dir, calibration=split[1].x, input_shape=SHAPE)
    assert [variant.target for variant in variants] == ["cpu-opt", "cpu-int8"]
    assert all(variant.accuracy_top1 is None and variant.samples == 0 for variant in variants)
    assert _entries(out_dir) == ["cpu-int8.onnx", "cpu-opt.onnx", "keep.txt"]


# --- bad input: one error each, nothing half-written ------------------------------------------------


@pytest.fixture()
def out_dir(tmp_path: Path) -> Iterator[Path]:
    """An existing output directory with one file: after a failed compile it must look exactly the same."""
    directory = tmp_path / "variants"
    directory.mkdir()
    (directory / "earlier.onnx").write_bytes(b"earlier")
    yield directory
    assert _entries(directory) == ["earlier.onnx"]
    assert (directory / "earlier.onnx").read_bytes() == b"earlier"
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging left


def test_not_onnx_is_rejected(tmp_path: Path, out_dir: Path) -> None:
    bogus = tmp_path / "notes.onnx"
    bogus.write_text("not a model")
    with pytest.raises(NotAnOnnxModel, match=r"notes\.onnx"):
        compile_local(bogus, out_dir, targets=["cpu-opt"])


def test_dynamic_batch_without_input_shape_is_rejected(out_dir: Path) -> None:
    with pytest.raises(DynamicInputShape, match="--input-shape"):
        compile_local(DIGITS, out_dir, targets=["cpu-opt"])


def test_unknown_target_names_it_and_the_known_ones(out_dir: Path) -> None:
    with pytest.raises(UnknownTarget) as caught:
        compile_local(DIGITS, out_dir, targets=["cpu-opt", "cpu-int4"], input_shape=SHAPE)
    message = str(caught.value)
    assert "cpu-int4" in message and all(target in message for target in LOCAL_TARGETS)
    assert isinstance(caught.value, EdgemlError)


def test_int8_without_calibration_is_rejected(out_dir: Path) -> None:
    with pytest.raises(MissingCalibration, match="cpu-int8"):
        compile_local(DIGITS, out_dir, targets=["cpu-opt", "cpu-int8"], input_shape=SHAPE)


def test_calibration_of_the_wrong_shape_is_rejected(out_dir: Path) -> None:
    with pytest.raises(CalibrationShapeMismatch, match=r"\[N, 1, 8, 8\]"):
        wrong = np.zeros((10, 64), np.float32)
        compile_local(DIGITS, out_dir, targets=["cpu-int8"], calibration=wrong, input_shape=SHAPE)


def test_failure_in_a_later_target_leaves_no_earlier_variant_behind(
    out_dir: Path, split: tuple[LabelledSet, LabelledSet, LabelledSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(source: Path, destination: Path, *args: object, **kwargs: object) -> None:
        destination.write_bytes(b"partial")
        raise EdgemlError("quantiser crashed")

    monkeypatch.setattr(local_compile, "quantise_int8", half_written)
    with pytest.raises(EdgemlError, match="quantiser crashed"):
        compile_local(
            DIGITS, out_dir, targets=["cpu-opt", "cpu-int8"], calibration=split[1].x, input_shape=SHAPE
        )


def test_a_static_model_calibrates_and_evaluates_at_its_fixed_batch(tmp_path: Path) -> None:
    weights = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 3], weights.ravel().tolist())],
    )
    source = tmp_path / "static.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    calibration = np.random.default_rng(0).random((7, 4), dtype=np.float32)  # 3 full batches of 2 + 1 left
    labelled = LabelledSet(calibration, (calibration @ weights).argmax(axis=1), "synthetic")
    [variant] = compile_local(
        source, tmp_path / "out", targets=["cpu-fp32"], calibration=calibration, holdout=labelled
    )
    assert variant.accuracy_top1 == 1.0 and variant.samples == 7  # the odd last row was padded, not lost
    [variant] = compile_local(source, tmp_path / "out", targets=["cpu-int8"], calibration=calibration)
    assert read_signature(variant.path).input.shape == (2, 4)
    with pytest.raises(MissingCalibration, match="at least 2"):
        compile_local(source, tmp_path / "other", targets=["cpu-int8"], calibration=calibration[:1])
    assert not (tmp_path / "other").exists()
