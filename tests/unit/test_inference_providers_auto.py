"""ExecutionProviders `auto` (the recipe default, issue 11 item 11): the nvidia manifests use the GPU without
extra configuration. `auto` takes CUDA when this ONNX Runtime has it, else CPU, with a warning when an NVIDIA
GPU is present but unusable (a CPU-only wheel) and quietly on a CPU-only device."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from edgeml_inference.backends.onnxruntime import choose_providers
from edgeml_inference.config import AppConfig
from edgeml_inference.exceptions import ConfigInvalid
from edgeml_inference.model import load_model
from inference_kit import write_model_dir

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_auto_is_the_default_and_stands_alone() -> None:
    assert AppConfig().execution_providers == ("auto",)
    assert AppConfig.from_mapping({"ExecutionProviders": "auto"}).execution_providers == ("auto",)
    with pytest.raises(ConfigInvalid, match="stands alone"):
        AppConfig.from_mapping({"ExecutionProviders": ["auto", "CPU"]})


def test_auto_takes_cuda_from_a_gpu_build_not_tensorrt() -> None:
    assert choose_providers(("auto",), GPU_BUILD, lambda: True) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


@pytest.mark.parametrize(("gpu", "level"), [(True, logging.WARNING), (False, logging.INFO)])
def test_auto_falls_back_to_cpu_warning_only_when_a_gpu_is_there(
    gpu: bool, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edgeml_inference.backends.onnxruntime"):
        assert choose_providers(("auto",), ["CPUExecutionProvider"], lambda: gpu) == ["CPUExecutionProvider"]
    [record] = [r for r in caplog.records if "auto" in r.getMessage()]
    assert record.levelno == level and "on CPU" in record.getMessage()


def test_the_app_loads_a_model_with_auto_on_this_cpu_build(tmp_path: Path) -> None:
    model = load_model(write_model_dir(tmp_path / "m"), ("auto",), 1)
    assert model.backend.providers == ("CPUExecutionProvider",)
