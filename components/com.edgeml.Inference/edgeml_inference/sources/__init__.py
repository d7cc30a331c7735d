"""Input sources: image directory, IPC topic, loopback HTTP."""

from edgeml_inference.sources.base import Source

__all__ = ["Source"]
