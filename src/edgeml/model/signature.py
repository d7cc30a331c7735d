"""Reads an ONNX model's input/output signature and rejects what the pipeline cannot compile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from edgeml.errors import EdgemlError

_ONNX_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
}


class NotAnOnnxModel(EdgemlError):
    """The file is missing or does not parse as an ONNX ModelProto."""


class DynamicInputShape(EdgemlError):
    """The model's input has a symbolic or unknown dimension and no --input-shape was given."""


class InputShapeMismatch(EdgemlError):
    """The --input-shape given does not fit the model's declared input."""


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: its name, static shape and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class ModelSignature:
    """The first graph input (fully static) and the graph outputs, plus the opset."""

    input: TensorSpec
    outputs: tuple[TensorSpec, ...]
    opset: int


def load_onnx(path: Path) -> onnx.ModelProto:
    """Loads `path` as ONNX or raises NotAnOnnxModel naming the file."""
    if not path.is_file():
        raise NotAnOnnxModel(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises DecodeError, ValueError, ... for non-ONNX bytes
        raise NotAnOnnxModel(f"{path}: not an ONNX model ({type(error).__name__})") from error
    if not model.graph.node or not model.graph.input:
        raise NotAnOnnxModel(f"{path}: not an ONNX model (no graph nodes or inputs)")
    return model


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    dims: list[int | str] = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return dims


def _dtype(value_info: onnx.ValueInfoProto) -> str:
    return _ONNX_DTYPES.get(int(value_info.type.tensor_type.elem_type), "unknown")


def read_signature(path: Path, input_shape: tuple[int, ...] | None = None) -> ModelSignature:
    """Signature of the model at `path`. `input_shape` fixes symbolic dims and must match static ones."""
    model = load_onnx(path)
    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = [item for item in model.graph.input if item.name not in initializers]
    first = graph_inputs[0]
    declared = _dims(first)
    if input_shape is None:
        if any(not isinstance(dim, int) for dim in declared):
            raise DynamicInputShape(
                f"{path}: input '{first.name}' has dynamic shape {declared};"
                " pass --input-shape, e.g. 1,3,224,224"
            )
        shape = tuple(int(dim) for dim in declared)
    else:
        if len(input_shape) != len(declared) or any(
            isinstance(dim, int) and dim != given for dim, given in zip(declared, input_shape, strict=True)
        ):
            raise InputShapeMismatch(
                f"{path}: --input-shape {list(input_shape)} does not fit input {declared}"
            )
        shape = tuple(input_shape)
    outputs = tuple(
        TensorSpec(item.name, tuple(dim if isinstance(dim, int) else -1 for dim in _dims(item)), _dtype(item))
        for item in model.graph.output
    )
    opset = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=0)
    return ModelSignature(TensorSpec(first.name, shape, _dtype(first)), outputs, opset)


def parse_shape(text: str) -> tuple[int, ...]:
    """Parses '1,3,224,224' (or '1x3x224x224') into a shape tuple; raises EdgemlError on anything else."""
    parts = [part.strip() for part in text.replace("x", ",").split(",") if part.strip()]
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or any(dim <= 0 for dim in shape):
        raise EdgemlError(f"--input-shape '{text}': expected positive integers like 1,3,224,224")
    return shape
