"""A small ONNX -> TensorFlow Lite (LiteRT) flatbuffer writer for convolutional image classifiers.

There is no ONNX-to-TFLite converter among the dependencies, and tests may not download models, so this
writes the flatbuffer directly with the schema bundled in `ai-edge-litert` (its generated object API and
`flatbuffer_utils`). It covers what EfficientNet-Lite0 / MobileNet-style exports and small test CNNs use:
Conv (grouped = depthwise), Clip/Relu (fused into the convolution or Gemm before them where possible), Add,
MaxPool, ReduceMean / GlobalAveragePool over the spatial axes, Flatten / Reshape to (N, features), Gemm,
Softmax. The graph
is rewritten NCHW -> NHWC (TFLite's layout): weights are transposed, explicit asymmetric pads become a PAD op.

With `uint8_input`, the model takes uint8 NHWC pixels, as AWS's TensorFlow Lite components feed their
models (`np.expand_dims(image).astype(np.uint8)`): CAST to float32, then MUL/ADD by the card's
normalisation, (pixel * scale - mean) / std, inside the graph. The result is a float32 model: "FP32 model,
uint8 NHWC input".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgeml.errors import EdgemlError


class UnsupportedForTflite(EdgemlError):
    """The ONNX graph uses an operator or layout this writer does not cover."""


@dataclass(frozen=True)
class PixelNormalisation:
    """x = (pixel * scale - mean[c]) / std[c] (docs/model-metadata.md `preprocessing`)."""

    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class _Graph:
    schema: Any
    tensors: list[Any] = field(default_factory=list)
    buffers: list[Any] = field(default_factory=list)
    operators: list[Any] = field(default_factory=list)
    opcodes: dict[int, int] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)  # ONNX value name -> tensor index
    shapes: dict[int, list[int]] = field(default_factory=dict)  # tensor index -> NHWC shape
    producer: dict[int, Any] = field(default_factory=dict)  # tensor index -> the OperatorT writing it

    def tensor(self, name: str, shape: list[int], dtype: int, data: np.ndarray | None = None) -> int:
        schema = self.schema
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type = name, list(shape), dtype
        tensor.buffer = 0  # activations: the empty buffer
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        position = len(self.tensors) - 1
        self.shapes[position] = list(shape)
        return position

    def constant(self, name: str, array: np.ndarray) -> int:
        types = {np.dtype(np.float32): self.schema.TensorType.FLOAT32, np.dtype(np.int32): 2}
        return self.tensor(name, list(array.shape), types[array.dtype], array)

    def op(self, code: int, inputs: list[int], outputs: list[int], options: Any = None, kind: int = 0) -> Any:
        schema = self.schema
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        operator = schema.OperatorT()
        operator.opcodeIndex = self.opcodes[code]
        operator.inputs, operator.outputs = inputs, outputs
        operator.builtinOptionsType, operator.builtinOptions = kind, options
        self.operators.append(operator)
        for output in outputs:
            self.producer[output] = operator
        return operator


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _attributes(node: Any) -> dict[str, Any]:
    return {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}


def onnx_to_tflite(source: Path, destination: Path, uint8_input: PixelNormalisation | None = None) -> Path:
    """Writes `source` (one NCHW image input, static shape) as a .tflite file at `destination`."""
    from ai_edge_litert import schema_py_generated as schema  # type: ignore[import-untyped]
    from ai_edge_litert.tools.flatbuffer_utils import (  # type: ignore[import-untyped]
        convert_object_to_bytearray,
    )

    model = onnx.load(str(source))
    constants = {item.name: numpy_helper.to_array(item) for item in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
    consumers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    graph = _Graph(schema)
    graph.buffers.append(schema.BufferT())  # buffer 0: the empty sentinel every model starts with
    ops, types, options = schema.BuiltinOperator, schema.TensorType, schema.BuiltinOptions

    first = model.graph.input[0]
    dims = [dim.dim_value for dim in first.type.tensor_type.shape.dim]
    dims[:1] = [dims[0] or 1]  # a dynamic batch dimension: written as 1 (LiteRT resizes it at run time)
    if len(dims) != 4 or not all(dims):
        raise UnsupportedForTflite(f"input {first.name!r} must be a static NCHW shape, got {dims}")
    batch, channels, height, width = dims
    nhwc = [batch, height, width, channels]
    if uint8_input is None:
        graph.index[first.name] = entry = graph.tensor(first.name, nhwc, types.FLOAT32)
    else:
        entry = graph.tensor(first.name, nhwc, types.UINT8)
        as_float = graph.tensor("pixels_float", nhwc, types.FLOAT32)
        cast = schema.CastOptionsT()
        cast.inDataType, cast.outDataType = types.UINT8, types.FLOAT32
        graph.op(ops.CAST, [entry], [as_float], cast, options.CastOptions)
        std = np.asarray(uint8_input.std, dtype=np.float32)
        multiplier = np.broadcast_to(np.float32(uint8_input.scale) / std, (channels,)).astype(np.float32)
        offset = np.broadcast_to(-np.asarray(uint8_input.mean, np.float32) / std, (channels,)).astype(
            np.float32
        )
        scaled = graph.tensor("pixels_scaled", nhwc, types.FLOAT32)
        graph.op(
            ops.MUL,
            [as_float, graph.constant("pixel_multiplier", multiplier)],
            [scaled],
            schema.MulOptionsT(),
            options.MulOptions,
        )
        graph.index[first.name] = graph.tensor("pixels_normalised", nhwc, types.FLOAT32)
        graph.op(
            ops.ADD,
            [scaled, graph.constant("pixel_offset", offset)],
            [graph.index[first.name]],
            schema.AddOptionsT(),
            options.AddOptions,
        )

    def value(name: str) -> int:
        if name not in graph.index:
            raise UnsupportedForTflite(
                f"value {name!r} is used before it is produced (or is a constant input)"
            )
        return graph.index[name]

    for node in model.graph.node:
        kind, attrs = node.op_type, _attributes(node)
        if kind == "Constant":
            continue
        if kind == "Conv":
            x = value(node.input[0])
            n, h, w, c = graph.shapes[x]
            weights = constants[node.input[1]].astype(np.float32)
            out_channels, _, kh, kw = weights.shape
            bias = constants[node.input[2]] if len(node.input) > 2 else np.zeros(out_channels, np.float32)
            group = int(attrs.get("group", 1))
            stride_h, stride_w = attrs.get("strides", [1, 1])
            if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise UnsupportedForTflite(f"Conv {node.name}: dilation")
            top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
            padding = schema.Padding.VALID
            if (top, bottom) == _same_pads(h, kh, stride_h) and (left, right) == _same_pads(w, kw, stride_w):
                padding = schema.Padding.SAME
            elif any((top, left, bottom, right)):
                pads = np.asarray([[0, 0], [top, bottom], [left, right], [0, 0]], dtype=np.int32)
                padded = graph.tensor(
                    f"{node.name}_padded", [n, h + top + bottom, w + left + right, c], types.FLOAT32
                )
                graph.op(
                    ops.PAD,
                    [x, graph.constant(f"{node.name}_pads", pads)],
                    [padded],
                    schema.PadOptionsT(),
                    options.PadOptions,
                )
                x, h, w = padded, h + top + bottom, w + left + right
                top = bottom = left = right = 0
            out_h = (
                (h + top + bottom - kh) // stride_h + 1
                if padding == schema.Padding.VALID
                else -(-h // stride_h)
            )
            out_w = (
                (w + left + right - kw) // stride_w + 1
                if padding == schema.Padding.VALID
                else -(-w // stride_w)
            )
            output = graph.tensor(node.output[0], [n, out_h, out_w, out_channels], types.FLOAT32)
            bias_index = graph.constant(f"{node.name}_bias", bias.astype(np.float32))
            if group == 1:
                filters = graph.constant(f"{node.name}_filters", weights.transpose(0, 2, 3, 1).copy())
                conv = schema.Conv2DOptionsT()
                conv.padding, conv.strideH, conv.strideW = padding, stride_h, stride_w
                graph.op(ops.CONV_2D, [x, filters, bias_index], [output], conv, options.Conv2DOptions)
            elif group == c == out_channels:
                filters = graph.constant(f"{node.name}_filters", weights.transpose(1, 2, 3, 0).copy())
                depthwise = schema.DepthwiseConv2DOptionsT()
                depthwise.padding, depthwise.strideH, depthwise.strideW = padding, stride_h, stride_w
                depthwise.depthMultiplier = 1
                graph.op(
                    ops.DEPTHWISE_CONV_2D,
                    [x, filters, bias_index],
                    [output],
                    depthwise,
                    options.DepthwiseConv2DOptions,
                )
            else:
                raise UnsupportedForTflite(f"Conv {node.name}: group {group} is neither 1 nor depthwise")
            graph.index[node.output[0]] = output
        elif kind in ("Clip", "Relu"):
            x = value(node.input[0])
            if kind == "Relu":
                low, high = 0.0, float("inf")
            else:
                low = float(constants[node.input[1]]) if len(node.input) > 1 and node.input[1] else -np.inf
                high = float(constants[node.input[2]]) if len(node.input) > 2 and node.input[2] else np.inf
                low, high = float(attrs.get("min", low)), float(attrs.get("max", high))
            if (low, high) == (0.0, 6.0):
                fused, code = schema.ActivationFunctionType.RELU6, ops.RELU6
            elif low == 0.0 and high == float("inf"):
                fused, code = schema.ActivationFunctionType.RELU, ops.RELU
            else:
                raise UnsupportedForTflite(f"Clip {node.name}: range [{low}, {high}]")
            before = graph.producer.get(x)
            options_before = getattr(before, "builtinOptions", None)
            if (
                options_before is not None
                and hasattr(options_before, "fusedActivationFunction")
                and options_before.fusedActivationFunction == 0
                and consumers.get(node.input[0], 0) == 1
            ):
                options_before.fusedActivationFunction = fused
                graph.index[node.output[0]] = x
            else:
                output = graph.tensor(node.output[0], graph.shapes[x], types.FLOAT32)
                graph.op(code, [x], [output])
                graph.index[node.output[0]] = output
        elif kind == "Add":
            a, b = value(node.input[0]), value(node.input[1])
            output = graph.tensor(node.output[0], graph.shapes[a], types.FLOAT32)
            graph.op(ops.ADD, [a, b], [output], schema.AddOptionsT(), options.AddOptions)
            graph.index[node.output[0]] = output
        elif kind in ("ReduceMean", "GlobalAveragePool"):
            x = value(node.input[0])
            n, _, _, c = graph.shapes[x]
            axes = attrs.get("axes")
            if axes is None and len(node.input) > 1:
                axes = constants[node.input[1]].tolist()
            if kind == "ReduceMean" and sorted(int(axis) % 4 for axis in axes or []) != [2, 3]:
                raise UnsupportedForTflite(f"ReduceMean {node.name}: only over the spatial axes")
            keep = bool(attrs.get("keepdims", 1))
            output = graph.tensor(node.output[0], [n, 1, 1, c] if keep else [n, c], types.FLOAT32)
            reducer = schema.ReducerOptionsT()
            reducer.keepDims = keep
            graph.op(
                ops.MEAN,
                [x, graph.constant(f"{node.name}_axes", np.asarray([1, 2], np.int32))],
                [output],
                reducer,
                options.ReducerOptions,
            )
            graph.index[node.output[0]] = output
        elif kind in ("Reshape", "Flatten"):
            x = value(node.input[0])
            shape = graph.shapes[x]
            if len(shape) == 4 and shape[1:3] != [1, 1] and shape[3] != 1:
                # ONNX flattens C, H, W in that order: back to NCHW first, so the features line up
                nchw = graph.tensor(
                    f"{node.name}_nchw", [shape[0], shape[3], shape[1], shape[2]], types.FLOAT32
                )
                graph.op(
                    ops.TRANSPOSE,
                    [x, graph.constant(f"{node.name}_perm", np.asarray([0, 3, 1, 2], np.int32))],
                    [nchw],
                    schema.TransposeOptionsT(),
                    options.TransposeOptions,
                )
                x = nchw
            flat = [shape[0], int(np.prod(shape[1:]))]
            output = graph.tensor(node.output[0], flat, types.FLOAT32)
            reshape = schema.ReshapeOptionsT()
            reshape.newShape = flat
            graph.op(
                ops.RESHAPE,
                [x, graph.constant(f"{node.name}_shape", np.asarray(flat, np.int32))],
                [output],
                reshape,
                options.ReshapeOptions,
            )
            graph.index[node.output[0]] = output
        elif kind == "MaxPool":
            x = value(node.input[0])
            n, h, w, c = graph.shapes[x]
            kh, kw = attrs["kernel_shape"]
            stride_h, stride_w = attrs.get("strides", [1, 1])
            if any(attrs.get("pads", [0, 0, 0, 0])) or attrs.get("ceil_mode", 0):
                raise UnsupportedForTflite(f"MaxPool {node.name}: padding or ceil_mode")
            output = graph.tensor(
                node.output[0], [n, (h - kh) // stride_h + 1, (w - kw) // stride_w + 1, c], types.FLOAT32
            )
            pool = schema.Pool2DOptionsT()
            pool.padding, pool.strideH, pool.strideW = schema.Padding.VALID, stride_h, stride_w
            pool.filterHeight, pool.filterWidth = kh, kw
            graph.op(ops.MAX_POOL_2D, [x], [output], pool, options.Pool2DOptions)
            graph.index[node.output[0]] = output
        elif kind == "Gemm":
            x = value(node.input[0])
            weights = constants[node.input[1]].astype(np.float32)
            if not attrs.get("transB", 0):
                weights = weights.T
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise UnsupportedForTflite(f"Gemm {node.name}: transA/alpha/beta")
            bias = constants[node.input[2]] if len(node.input) > 2 else np.zeros(weights.shape[0], np.float32)
            output = graph.tensor(node.output[0], [graph.shapes[x][0], weights.shape[0]], types.FLOAT32)
            graph.op(
                ops.FULLY_CONNECTED,
                [
                    x,
                    graph.constant(f"{node.name}_weights", weights.copy()),
                    graph.constant(f"{node.name}_bias", bias.astype(np.float32)),
                ],
                [output],
                schema.FullyConnectedOptionsT(),
                options.FullyConnectedOptions,
            )
            graph.index[node.output[0]] = output
        elif kind == "Softmax":
            x = value(node.input[0])
            output = graph.tensor(node.output[0], graph.shapes[x], types.FLOAT32)
            softmax = schema.SoftmaxOptionsT()
            softmax.beta = 1.0
            graph.op(ops.SOFTMAX, [x], [output], softmax, options.SoftmaxOptions)
            graph.index[node.output[0]] = output
        else:
            raise UnsupportedForTflite(f"ONNX operator {kind} ({node.name}) is not covered")

    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = graph.tensors, graph.operators
    subgraph.inputs = [entry]
    subgraph.outputs = [value(model.graph.output[0].name)]
    subgraph.name = "main"
    codes = []
    for code in sorted(graph.opcodes, key=graph.opcodes.__getitem__):
        opcode = schema.OperatorCodeT()
        opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), 1
        codes.append(opcode)
    tflite = schema.ModelT()
    tflite.version, tflite.operatorCodes, tflite.subgraphs = 3, codes, [subgraph]
    tflite.buffers, tflite.description = graph.buffers, f"edgeml: {source.name} (ONNX) as TFLite"
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(bytes(convert_object_to_bytearray(tflite)))
    return destination
