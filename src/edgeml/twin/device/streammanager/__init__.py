"""The Stream Manager twin: serves the `stream_manager` SDK's protocol on loopback for device code and tests.

Cloud-side only (device code never imports it). Start with `StreamManagerServer(store_root).start()` or
`python -m edgeml.twin.device.streammanager --store DIR`; see docs/streammanager-twin.md.
"""

from edgeml.twin.device.streammanager.exporters.retry import RetryPolicy
from edgeml.twin.device.streammanager.server import StreamManagerServer

__all__ = ["RetryPolicy", "StreamManagerServer"]
