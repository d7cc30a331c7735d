"""ONNX Runtime backend: execution providers from the configuration, dropping unavailable ones."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeml_inference.backends.base import Backend
from edgeml_inference.exceptions import BackendUnavailable

_log = logging.getLogger(__name__)
PROVIDER_NAMES = {
    "CPU": "CPUExecutionProvider",
    "CUDA": "CUDAExecutionProvider",
    "TensorRT": "TensorrtExecutionProvider",
    "OpenVINO": "OpenVINOExecutionProvider",
}


AUTO = "auto"
AUTO_ORDER = ("CUDA",)  # TensorRT is not chosen by itself: its first engine build takes minutes
NVIDIA_DEVICE_NODES = ("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu")  # desktop/datacenter, Jetson


def nvidia_gpu_present() -> bool:
    return any(Path(node).exists() for node in NVIDIA_DEVICE_NODES)


def choose_providers(
    wanted: tuple[str, ...], available: list[str], gpu_present: Callable[[], bool] = nvidia_gpu_present
) -> list[str]:
    """ORT provider names for `wanted` (config names) in order; unavailable ones dropped with a warning.

    `auto` takes the GPU provider ONNX Runtime has here (CUDA), else the CPU: with a warning when an NVIDIA
    GPU is present but this ONNX Runtime cannot use it (a CPU-only wheel), quietly on a CPU-only device.
    CPU is always last, the fallback.
    """
    if wanted == (AUTO,):
        found = [name for name in AUTO_ORDER if PROVIDER_NAMES[name] in available]
        if not found:
            log = _log.warning if gpu_present() else _log.info
            log("ExecutionProviders auto: this ONNX Runtime has no GPU provider (%s); on CPU", available)
        wanted = (*found, "CPU")
    chosen: list[str] = []
    for name in wanted:
        provider = PROVIDER_NAMES.get(name, name)
        if provider in available:
            if provider not in chosen:
                chosen.append(provider)
        else:
            _log.warning("execution provider %s is not available here (have %s); dropped", name, available)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxRuntimeBackend(Backend):
    """One `onnxruntime.InferenceSession`; threads pinned by `intra_op_threads` (0: ORT's default)."""

    name = "onnxruntime"

    def __init__(
        self,
        model_path: Path,
        input_name: str,
        providers: tuple[str, ...] = ("CPU",),
        intra_op_threads: int = 1,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise BackendUnavailable(f"onnxruntime is not installed: {error}") from error
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
            options.inter_op_num_threads = 1
        if intra_op_threads != 1:
            # ORT's pool threads spin between kernels by default; on a core device shared with the nucleus,
            # the sinks and other components they take the cores those need. Measured on 2 shared cores
            # with a decode thread beside it (EfficientNet-Lite0): 12.1 ms a frame spinning, 6.2 ms not,
            # 7.4 ms on one thread (docs/inference-app.md).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = choose_providers(providers, list(ort.get_available_providers()))
        try:
            self.session: Any = ort.InferenceSession(str(model_path), sess_options=options, providers=chosen)
        except Exception as error:  # onnxruntime raises its own unexported exception classes
            raise BackendUnavailable(f"onnxruntime cannot load {model_path.name}: {error}") from error
        self.providers = tuple(self.session.get_providers())
        names = [item.name for item in self.session.get_inputs()]
        self.input_name = input_name if input_name in names else names[0]
        first_dim = self.session.get_inputs()[names.index(self.input_name)].shape[0]
        self.fixed_batch = first_dim if isinstance(first_dim, int) and first_dim > 0 else None
        self.output_names = [self.session.get_outputs()[0].name]

    def run(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.session.run(self.output_names, {self.input_name: batch})
        return np.asarray(outputs[0])

    def close(self) -> None:
        self.session = None
