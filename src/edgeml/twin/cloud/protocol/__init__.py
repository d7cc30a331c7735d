"""The cloud twin's server side of botocore's REST-JSON protocol, driven by botocore's own service models."""

from edgeml.twin.cloud.protocol.serialize import Response
from edgeml.twin.cloud.protocol.server import Request, RestJsonService

__all__ = ["Request", "Response", "RestJsonService"]
