"""Our reproduction of the inference path of AWS's public `aws.greengrass.TensorFlowLiteImageClassification`
component (awslabs/aws-greengrass-labs-ml-components, tflite/aws.greengrass.TensorFlowLiteImageClassification/
image_classification/: prediction_utils.py, config_utils.py, IPCUtils.py), for benchmarks/bench_e2e.py.

What it reproduces, step by step, as their code does it:
- `load_image`: `cv2.imread(path)`: the file decoded to a BGR uint8 array (their model gets BGR);
- `predict_from_image`: `cv2.resize(image, (224, 224))`: bilinear (INTER_LINEAR), no antialiasing;
- `predict`: `np.expand_dims(image, 0).astype(np.uint8)`, `interpreter.set_tensor`, `invoke`, `get_tensor`,
  `probabilities = output[0] / SCORE_CONVERTER`, `np.argsort(probabilities)[::-1]`, the top
  MAX_NO_OF_RESULTS (5) with score >= SCORE_THRESHOLD (0.3) as {"Label", "Score": str(...)} entries of a
  PAYLOAD dict with a `str(datetime.now())` timestamp, `logger.info(json.dumps(PAYLOAD))` (their logger: a
  StreamHandler at INFO; here it writes to a file, as Greengrass captures a component's stdout);
- `IPCUtils.publish_results_to_cloud`: a PublishToIoTCoreRequest (QoS AT_LEAST_ONCE) on the v1 IPC client
  (`awsiot.greengrasscoreipc.connect()`), `new_publish_to_iot_core().activate(request).result(10)`, a second
  log line, `get_response().result(10)`: synchronous, on the inference thread, one per image.

Substitutions (cv2 is not a dependency here), and how they bias the comparison:
- decode: Pillow (libjpeg-turbo, as OpenCV's bundled decoder) to an RGB array, the channels reversed as a
  view: cv2.imread has libjpeg write BGR directly, at no extra cost. (An earlier version copied the
  reversed channels into a new array, `np.ascontiguousarray(rgb[:, :, ::-1])`; that strided copy cost ~1.9 ms
  an image of 640x480 here, 2.9 ms against 1.0 ms, a cost cv2 never pays, and inflated edgeml's ratio by
  about a quarter);
- resize: INTER_LINEAR's arithmetic in numpy (each output pixel from its 4 nearest source pixels, no
  antialiasing filter: the cheap, aliasing resize their code gets), so the model sees what cv2 would give
  it. numpy is slower than OpenCV's SIMD resize, which would bias the comparison in edgeml's favour, so
  bench_e2e judges the target on the ratio with this step charged at the issue's measured cv2 time
  (RESIZE_CV2_MS, 0.3 ms), and shows the raw ratio beside it;
- SCORE_CONVERTER: 255 in their code, for the uint8 scores of their quantized sample model; our models
  output float probabilities, so it is 1.0 here (the same division, the same cost);
- the interpreter: LiteRT (`ai_edge_litert.interpreter.Interpreter`, their `tflite_runtime` successor) for
  .tflite models; for the INT8 comparison, where no INT8 .tflite can be made here, the same calls go to an
  ONNX Runtime session of the INT8 ONNX model that edgeml runs too (`OnnxInvoker`). Threads pinned to 1.
Functionally the reproduction is as their code: one image at a time, BGR in, no offline buffering.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SCORE_THRESHOLD = 0.3
MAX_NO_OF_RESULTS = 5
SHAPE = (224, 224)  # (width, height), as cv2.resize takes it
TIMEOUT = 10
RESIZE_CV2_MS = 0.3  # the measured cv2.resize of 640x480 -> 224x224 on this machine (0.2-0.3 ms)


class LiteRtInvoker:
    """`tflite.Interpreter(model_path)`, `allocate_tensors`, the first input and output."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]

        self.interpreter: Any = Interpreter(model_path=str(model_path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()

    def __call__(self, image_data: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_details[0]["index"], image_data)
        self.interpreter.invoke()
        return np.asarray(self.interpreter.get_tensor(self.output_details[0]["index"]))


class OnnxInvoker:
    """The same set/invoke/get calls on an ONNX Runtime session (CPU EP, one intra-op thread)."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, image_data: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: image_data})[0])


def cv2_imread(path: Path) -> np.ndarray:
    """cv2.imread(path): H x W x 3 uint8, BGR (a reversed view of the decoded RGB pixels: no copy, as cv2's
    decoder writes BGR itself; a mode other than RGB is converted first, as cv2 converts grey or CMYK)."""
    with Image.open(path) as image:
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return rgb[:, :, ::-1]


@functools.cache
def _linear_taps(height: int, width: int, size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Source rows/columns and weights of cv2's INTER_LINEAR: src = (dst + 0.5) * scale - 0.5, clamped."""
    out_w, out_h = size
    taps: list[np.ndarray] = []
    for count, extent in ((out_h, height), (out_w, width)):
        position = np.maximum((np.arange(count) + 0.5) * (extent / count) - 0.5, 0.0)
        low = np.minimum(np.floor(position).astype(np.intp), extent - 1)
        taps += [low, np.minimum(low + 1, extent - 1), (position - low).astype(np.float32)]
    return tuple(taps)


def cv2_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """cv2.resize(image, size) with INTER_LINEAR: each output pixel from its 4 nearest source pixels, no
    antialiasing filter (numpy, with the taps cached per shape; slower than OpenCV's SIMD code, which is
    why bench_e2e also reports the ratio with this step charged at RESIZE_CV2_MS)."""
    y0, y1, wy, x0, x1, wx = _linear_taps(image.shape[0], image.shape[1], size)
    rows0, rows1, cols0, cols1 = y0[:, None], y1[:, None], x0[None, :], x1[None, :]
    a, b = image[rows0, cols0].astype(np.float32), image[rows0, cols1].astype(np.float32)
    c, d = image[rows1, cols0].astype(np.float32), image[rows1, cols1].astype(np.float32)
    wx3 = wx[None, :, None]
    top = a + (b - a) * wx3
    bottom = c + (d - c) * wx3
    resized: np.ndarray = np.rint(top + (bottom - top) * wy[:, None, None]).astype(np.uint8)
    return resized


class IotCorePublisher:
    """IPCUtils.publish_results_to_cloud over the v1 IPC client, synchronous as theirs."""

    def __init__(self, ipc_client: Any, topic: str, logger: logging.Logger) -> None:
        self.ipc_client = ipc_client
        self.topic = topic
        self.logger = logger

    def publish_results_to_cloud(self, payload: dict[str, Any]) -> None:
        from awsiot.greengrasscoreipc.model import QOS, PublishToIoTCoreRequest

        try:
            request = PublishToIoTCoreRequest(
                topic_name=self.topic, qos=QOS.AT_LEAST_ONCE, payload=json.dumps(payload).encode()
            )
            operation = self.ipc_client.new_publish_to_iot_core()
            operation.activate(request).result(TIMEOUT)
            self.logger.info("Publishing results to the IoT core...")
            operation.get_response().result(TIMEOUT)
        except Exception as error:
            self.logger.error(f"Exception occured during publish: {error}")


class AwsImageClassification:
    """load_image -> predict_from_image -> predict, as their prediction_utils does."""

    def __init__(
        self,
        invoke: Any,
        labels: list[str],
        publisher: IotCorePublisher | None,
        logger: logging.Logger,
        score_converter: float = 1.0,
    ) -> None:
        self.invoke = invoke
        self.labels = labels
        self.publisher = publisher
        self.logger = logger
        self.score_converter = score_converter

    def load_image(self, image_path: Path) -> np.ndarray:
        return cv2_imread(image_path)

    def predict_from_image(self, image: np.ndarray) -> dict[str, Any]:
        return self.predict(cv2_resize(image, SHAPE))

    def predict(self, image_data: np.ndarray) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "timestamp": str(datetime.datetime.now()),
            "inference-type": "image-classification",
            "inference-description": (
                f"Top {MAX_NO_OF_RESULTS} predictions with score {SCORE_THRESHOLD} or above "
            ),
            "inference-results": [],
        }
        image_data = np.expand_dims(image_data, axis=0).astype(np.uint8)
        model_output = self.invoke(image_data)
        probabilities = model_output[0] / self.score_converter
        sort_classes_by_probability = np.argsort(probabilities)[::-1]
        for index in sort_classes_by_probability[:MAX_NO_OF_RESULTS]:
            if probabilities[index] >= SCORE_THRESHOLD:
                payload["inference-results"].append(
                    {"Label": str(self.labels[index]), "Score": str(probabilities[index])}
                )
        self.logger.info(json.dumps(payload))
        if self.publisher is not None:
            self.publisher.publish_results_to_cloud(payload)
        return payload

    def classify_file(self, image_path: Path) -> dict[str, Any]:
        return self.predict_from_image(self.load_image(image_path))


def file_logger(path: Path) -> logging.Logger:
    """Their logger (StreamHandler, INFO), writing to `path` instead of the process' stdout."""
    logger = logging.getLogger(f"aws-baseline-{path}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler(path.open("a", encoding="utf-8")))
    return logger
