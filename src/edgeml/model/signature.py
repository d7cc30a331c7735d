"""Reads a model's input/output signature (ONNX, or a .tflite flatbuffer through LiteRT's interpreter) and
rejects what the pipeline cannot compile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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


class NotATfliteModel(EdgemlError):
    """The .tflite file is missing or LiteRT's interpreter cannot load it."""


TFLITE_SUFFIX = ".tflite"


def model_framework(path: Path) -> str:
    """metadata.json `framework` of a source model file: "tflite" for a .tflite file, else "onnx"."""
    return "tflite" if path.suffix.lower() == TFLITE_SUFFIX else "onnx"


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


def _fixed_shape(
    path: Path, name: str, declared: list[int | str], input_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """The static input shape: `declared` if fully static, else `input_shape`, which must fit `declared`."""
    if input_shape is None:
        if any(not isinstance(dim, int) for dim in declared):
            raise DynamicInputShape(
                f"{path}: input '{name}' has dynamic shape {declared}; pass --input-shape, e.g. 1,3,224,224"
            )
        return tuple(int(dim) for dim in declared)
    if len(input_shape) != len(declared) or any(
        isinstance(dim, int) and dim != given for dim, given in zip(declared, input_shape, strict=True)
    ):
        raise InputShapeMismatch(f"{path}: --input-shape {list(input_shape)} does not fit input {declared}")
    return tuple(input_shape)


def tflite_interpreter(path: Path, xnnpack: bool = False) -> Any:
    """LiteRT's Interpreter on `path` (tensors allocated), or NotATfliteModel naming the file. `xnnpack`:
    with LiteRT's default delegate, as the app runs it (it logs a line on stderr); else built-in kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # type: ignore[import-untyped]

    if not path.is_file():
        raise NotATfliteModel(f"{path}: no such file")
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:  # "The model is not a valid Flatbuffer buffer", ...
        raise NotATfliteModel(f"{path}: LiteRT cannot load it ({' '.join(str(error).split())})") from error
    return interpreter


def _tflite_spec(detail: dict[str, Any]) -> tuple[str, list[int | str], str]:
    signature = detail.get("shape_signature")
    dims = [int(dim) for dim in (detail["shape"] if signature is None or not len(signature) else signature)]
    return str(detail["name"]), [dim if dim > 0 else "?" for dim in dims], np.dtype(detail["dtype"]).name


def read_tflite_signature(path: Path, input_shape: tuple[int, ...] | None = None) -> ModelSignature:
    """Signature of a .tflite model, read from the flatbuffer by LiteRT's interpreter (opset 0: none)."""
    interpreter = tflite_interpreter(path)
    inputs = interpreter.get_input_details()
    if not inputs:
        raise NotATfliteModel(f"{path}: the model has no input tensor")
    name, declared, dtype = _tflite_spec(inputs[0])
    outputs = []
    for detail in interpreter.get_output_details():
        out_name, dims, out_dtype = _tflite_spec(detail)
        static = tuple(dim if isinstance(dim, int) else -1 for dim in dims)
        outputs.append(TensorSpec(out_name, static, out_dtype))
    shape = _fixed_shape(path, name, declared, input_shape)
    return ModelSignature(TensorSpec(name, shape, dtype), tuple(outputs), 0)


def read_signature(path: Path, input_shape: tuple[int, ...] | None = None) -> ModelSignature:
    """Signature of the model at `path`. `input_shape` fixes symbolic dims and must match static ones."""
    if model_framework(path) == "tflite":
        return read_tflite_signature(path, input_shape)
    model = load_onnx(path)
    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = [item for item in model.graph.input if item.name not in initializers]
    first = graph_inputs[0]
    shape = _fixed_shape(path, first.name, _dims(first), input_shape)
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
