"""The signature reader: what the pipeline accepts and the errors it gives for what it cannot compile."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from edgeml.errors import EdgemlError
from edgeml.model.signature import (
    DynamicInputShape,
    InputShapeMismatch,
    NotAnOnnxModel,
    parse_shape,
    read_signature,
)


def _identity_model(path: Path, dims: list[int | str]) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_static_model_signature(tmp_path: Path) -> None:
    signature = read_signature(_identity_model(tmp_path / "m.onnx", [1, 3, 4, 4]))
    assert signature.input.name == "input"
    assert signature.input.shape == (1, 3, 4, 4)
    assert signature.input.dtype == "float32"
    assert signature.outputs[0].name == "output"
    assert signature.opset == 17


def test_dynamic_batch_needs_input_shape(tmp_path: Path) -> None:
    path = _identity_model(tmp_path / "m.onnx", ["batch", 3, 4, 4])
    with pytest.raises(DynamicInputShape, match="input-shape"):
        read_signature(path)
    assert read_signature(path, (8, 3, 4, 4)).input.shape == (8, 3, 4, 4)
    with pytest.raises(InputShapeMismatch):
        read_signature(path, (8, 1, 4, 4))


def test_not_onnx(tmp_path: Path) -> None:
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(NotAnOnnxModel, match=r"model\.onnx"):
        read_signature(junk)
    with pytest.raises(NotAnOnnxModel, match="no such file"):
        read_signature(tmp_path / "missing.onnx")


@pytest.mark.parametrize("text", ["", "a,b", "1,0,3", "-1,3"])
def test_parse_shape_rejects(text: str) -> None:
    with pytest.raises(EdgemlError, match="input-shape"):
        parse_shape(text)


def test_parse_shape_forms() -> None:
    assert parse_shape("1,3,224,224") == (1, 3, 224, 224)
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224)
