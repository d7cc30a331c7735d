"""Failures of the inference app, one small class each."""

from __future__ import annotations


class InferenceAppError(Exception):
    """Base class of every error the app raises on purpose."""


class ConfigInvalid(InferenceAppError):
    """A configuration value is missing, of the wrong type or out of range; `key` names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class MetadataInvalid(InferenceAppError):
    """metadata.json is missing, unreadable or lacks a key the app needs."""


class ChecksumMismatch(InferenceAppError):
    """A model file's sha256 differs from the one listed in metadata.json `files` (or the file is missing)."""


class BackendUnavailable(InferenceAppError):
    """The runtime a model needs (onnxruntime, dlr) is not installed or cannot load the model."""


class ModelLoadError(InferenceAppError):
    """A model could not be loaded, verified or warmed up."""


class BadInput(InferenceAppError):
    """One input cannot be inferred; `reason` is a short machine-readable code (e.g. `corrupt_image`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BadOutput(InferenceAppError):
    """The model produced an unusable output (NaN or infinity, wrong shape)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PipelineClosed(InferenceAppError):
    """A request was submitted after the pipeline stopped."""
