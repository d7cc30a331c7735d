"""Builders for the model-pipeline tests: a tiny ONNX model, a model card, a Neo tarball, a variants dir."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeml.model.card import CARD_FILE
from edgeml.model.compile.neo_artifact import DLR_FILES
from edgeml.model.variants import SourceModel, Variant, VariantSet, sha256_file, with_digests

LABELS = [str(digit) for digit in range(10)]


def tiny_onnx(path: Path, dims: list[int | str] | None = None, seed: int = 0) -> Path:
    """An 8x8 one-channel image classifier (Flatten + Gemm to 10 logits); `dims` may be symbolic."""
    dims = dims if dims is not None else [1, 1, 8, 8]
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((64, 10)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(np.zeros(10, dtype=np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [dims[0], 10])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def card_dict() -> dict[str, object]:
    return {
        "labels": LABELS,
        "preprocessing": {
            "color": "L",
            "resize": [8, 8],
            "resample": "bilinear",
            "scale": 1 / 255,
            "mean": [0.0],
            "std": [1.0],
            "layout": "NCHW",
        },
        "dataset_id": "sklearn-digits/1.9.1",
        "created": "2026-11-22",
        "accuracy_dataset": "sklearn-digits/holdout-seed0",
        "baseline": {"class_frequencies": [0.1] * 10},
    }


def write_card(directory: Path) -> Path:
    path = directory / CARD_FILE
    path.write_text(json.dumps(card_dict()), encoding="utf-8")
    return path


def dlr_tarball(names: tuple[str, ...] = DLR_FILES) -> bytes:
    """A tar.gz of the DLR layout (file contents are stand-ins: Neo cannot run here)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name in names:
            data = f"stand-in {name}".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def variants_dir(root: Path, *, neo_target: str | None = "rasp4b") -> Path:
    """A variants directory as `edgeml model compile` writes it: two local variants and one Neo variant,
    each with the sha256 of its files recorded."""
    root.mkdir(parents=True, exist_ok=True)
    source = tiny_onnx(root / "source.onnx")
    tiny_onnx(root / "cpu-opt.onnx", seed=1)
    tiny_onnx(root / "cpu-int8.onnx", seed=2)
    variants = [
        Variant("cpu-opt", "onnx", "cpu-opt.onnx", "none", 0.97, 360),
        Variant("cpu-int8", "onnx", "cpu-int8.onnx", "int8-qdq", 0.965, 360),
    ]
    if neo_target:
        with tarfile.open(fileobj=io.BytesIO(dlr_tarball()), mode="r:gz") as archive:
            archive.extractall(root / neo_target, filter="data")
        variants.append(Variant(neo_target, "dlr", neo_target, "neo", None, 0))
    source_model = SourceModel(
        "source.onnx", sha256_file(source), "onnx", "input", (1, 1, 8, 8), "float32", "logits"
    )
    VariantSet(source_model, tuple(with_digests(root, variant) for variant in variants)).write(root)
    write_card(root)
    return root


def copy_tree(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination
