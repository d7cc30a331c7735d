"""The three local model transforms: ONNX Runtime graph optimisation, FP16 conversion, static INT8 QDQ.

Each reads one .onnx file and writes another; none touches anything else.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgeml.model.compile.calibration import ArrayCalibrationReader

# BASIC keeps the graph in the standard ai.onnx domain (constant folding, redundant node removal,
# Conv+BatchNorm/Add/Mul folding), so the optimised file loads under every execution provider the
# inference app may pick (CPU, CUDA, TensorRT, OpenVINO) and stays valid input for quantisation.
# EXTENDED and ALL fuse into com.microsoft contrib ops tied to the EP (and ALL to the CPU's NCHWc
# layout); ONNX Runtime still applies those online when the device creates its session.
OPTIMISATION_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC


def optimise_graph(source: Path, destination: Path) -> None:
    """Writes `source` after ONNX Runtime's offline graph optimisation at OPTIMISATION_LEVEL."""
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMISATION_LEVEL
    options.optimized_model_filepath = str(destination)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def convert_fp16(source: Path, destination: Path) -> None:
    """Writes `source` with float16 weights and activations; inputs and outputs stay float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(source))
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(destination))


def quantise_int8(
    source: Path,
    destination: Path,
    calibration: np.ndarray,
    input_name: str,
    batch: int,
    *,
    fixed_batch: bool,
) -> None:
    """Static INT8 quantisation in QDQ format, calibrated (min/max) on `calibration`.

    The model is first pre-processed (symbolic shape inference + ONNX optimisation) as ONNX Runtime
    recommends; weights are signed int8 per output channel, activations unsigned int8 (the CPU EP's
    fast path for QLinearConv / QLinearMatMul with VNNI or plain AVX2).
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="edgeml-int8-") as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        quantize_static(
            str(prepared),
            str(destination),
            ArrayCalibrationReader(input_name, calibration, batch, fixed_batch=fixed_batch),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
        )
