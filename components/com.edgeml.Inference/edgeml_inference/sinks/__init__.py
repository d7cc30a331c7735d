"""Result sinks: IPC pub/sub, IoT Core, Stream Manager; each behind an AsyncSink (bounded queue + thread)."""

from edgeml_inference.sinks.base import AsyncSink, Sink

__all__ = ["AsyncSink", "Sink"]
