"""Trains the digits sample model (a small CNN on scikit-learn's digits) and exports it to ONNX.

    .venv/bin/python models/digits/train.py [--seed 0] [--out models/digits]

Writes model.onnx (opset 18, input "input" float32 [batch, 1, 8, 8] with a dynamic batch dimension named
"batch", output "logits" [batch, 10]), labels.json, metrics.json (held-out accuracy measured on the
exported ONNX file with ONNX Runtime, class frequencies and a confidence histogram for the drift
baseline) and model-card.json (what the packager needs for metadata.json). Deterministic for a seed:
one CPU thread, torch.use_deterministic_algorithms, seeded shuffling.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from edgeml.model.datasets import LabelledSet, digits_split
from edgeml.model.evaluate import cpu_session, drift_baseline, predict_logits

OPSET = 18
EPOCHS = 40
BATCH = 64
LEARNING_RATE = 3e-3
LABELS = [str(digit) for digit in range(10)]
PREPROCESSING = {
    "color": "L",
    "resize": [8, 8],
    "resample": "bilinear",
    "scale": 1.0 / 255.0,
    "mean": [0.0],
    "std": [1.0],
    "layout": "NCHW",
}


class DigitsCNN(nn.Module):
    """Two 3x3 conv blocks, 2x2 max-pool, two dense layers: about 40k parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def train(data: LabelledSet, seed: int) -> DigitsCNN:
    """Adam + cross-entropy, seeded and deterministic on one CPU thread."""
    torch.manual_seed(seed)
    model = DigitsCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    shuffler = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(y), generator=shuffler)
        for start in range(0, len(y), BATCH):
            rows = order[start : start + BATCH]
            optimiser.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            optimiser.step()
        scheduler.step()
    return model.eval()


def export_onnx(model: DigitsCNN, path: Path) -> None:
    """ONNX export (opset OPSET) with a dynamic batch dimension named "batch"; weights inside the file."""
    example = torch.zeros(1, 1, 8, 8)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: batch}},
        optimize=True,
        verbose=False,
    )
    assert program is not None
    proto = program.model_proto
    proto.producer_version = ""  # keep the file independent of the exact torch build
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def metrics_for(model_path: Path, holdout: LabelledSet, seed: int, dataset_id: str) -> dict[str, Any]:
    """Held-out accuracy and drift baseline, measured on the exported ONNX file with ONNX Runtime."""
    logits = predict_logits(cpu_session(model_path, intra_op_threads=1), holdout.x)
    accuracy = float(np.mean(logits.argmax(axis=1) == holdout.y))
    return {
        "accuracy_top1": round(accuracy, 6),
        "samples": len(holdout),
        "holdout": holdout.dataset_id,
        "seed": seed,
        "dataset_id": dataset_id,
        "baseline": drift_baseline(logits, classes=len(LABELS)).to_dict(),
    }


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_set, _, holdout = digits_split(args.seed)
    model = train(train_set, args.seed)

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out, prefix=".train-") as scratch:
        staged = Path(scratch) / "model.onnx"
        export_onnx(model, staged)
        metrics = metrics_for(staged, holdout, args.seed, train_set.dataset_id)
        metrics["trained"] = dt.date.today().isoformat()
        staged.replace(args.out / "model.onnx")
    write_json(args.out / "labels.json", LABELS)
    write_json(args.out / "metrics.json", metrics)
    write_json(
        args.out / "model-card.json",
        {
            "labels": LABELS,
            "preprocessing": PREPROCESSING,
            "dataset_id": metrics["dataset_id"],
            "created": metrics["trained"],
            "accuracy_dataset": holdout.dataset_id,
            "input_layout": "NCHW",
            "output_kind": "logits",
            "postprocessing": {"softmax": True, "top_k": 3},
            "baseline": metrics["baseline"],
        },
    )
    print(f"held-out top-1 {metrics['accuracy_top1']:.4f} on {metrics['samples']} samples -> {args.out}")


if __name__ == "__main__":
    main()
