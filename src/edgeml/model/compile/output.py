"""Writes a compile run's variants directory: variant files, variants.json (merged) and the model card."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeml.model.card import CARD_FILE, load_card
from edgeml.model.signature import ModelSignature
from edgeml.model.variants import (
    SourceModel,
    Variant,
    VariantSet,
    merge_into_existing,
    sha256_file,
    with_digests,
)


def source_model(path: Path, signature: ModelSignature, framework: str = "onnx") -> SourceModel:
    """The SourceModel record of `path` with its (static) signature."""
    output = signature.outputs[0].name if signature.outputs else "output"
    return SourceModel(
        file_name=path.name,
        sha256=sha256_file(path),
        framework=framework,
        input_name=signature.input.name,
        input_shape=signature.input.shape,
        input_dtype=signature.input.dtype,
        output_name=output,
    )


def card_for(source: Path, card: Path | None) -> Path | None:
    """The model card to copy: --card if given, else model-card.json beside the source, else none."""
    if card is not None:
        return card
    beside = source.parent / CARD_FILE
    return beside if beside.is_file() else None


def finish_stage(
    stage: Path, out_dir: Path, source: SourceModel, variants: list[Variant], card: Path | None
) -> VariantSet:
    """Writes variants.json (merged with `out_dir`'s for the same source) and the card into `stage`.

    Each new variant records the sha256 of its files as staged, for `package` to check.
    """
    recorded = tuple(with_digests(stage, variant) for variant in variants)
    variant_set = merge_into_existing(out_dir, VariantSet(source, recorded))
    variant_set.write(stage)
    if card is not None:
        load_card(card)  # refuse a broken card now rather than at package time
        shutil.copyfile(card, stage / CARD_FILE)
    return variant_set
