"""A simulated Greengrass nucleus (issue 10): takes deployments from the cloud twin through the
device-facing public APIs and runs components from their recipes as the nucleus does.

Entry points: `NucleusTwin` (one device: a root directory and its processes), `DeviceFleet` (many),
`deploy_to_group` (what the demo calls: publish-free deployment through the control plane and wait).
Sources are named in each module (NUC = aws-greengrass/aws-greengrass-nucleus, src/main/java/com/aws/
greengrass/...).
"""

from __future__ import annotations

from edgeml.twin.device.nucleus.device import NucleusTwin
from edgeml.twin.device.nucleus.fleet import DeviceFleet, deploy_to_group

__all__ = ["DeviceFleet", "NucleusTwin", "deploy_to_group"]
