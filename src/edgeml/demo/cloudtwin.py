"""The demo's cloud: the cloud twin's one loopback endpoint (moto in-process for S3, IoT, Kinesis, ...,
and the GreengrassV2 control plane), which can be stopped and brought back on the same port, as a cloud
outage the device rides out."""

from __future__ import annotations

from pathlib import Path

from edgeml.twin.cloud.endpoint import CloudEndpoint


class DemoCloud:
    """The cloud twin for one demo run; its state (control plane JSON) lives in `state_dir`.

    moto's state is process-global and stays in this process across a stop (persist_moto off: nothing is
    pickled), the control plane reloads its own state from `state_dir` on the restart.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._endpoint: CloudEndpoint | None = None
        self._port = 0

    @property
    def endpoint_url(self) -> str:
        return self._endpoint.endpoint_url if self._endpoint is not None else f"http://127.0.0.1:{self._port}"

    def start(self) -> DemoCloud:
        """Starts the endpoint: on a free port the first time, on the same port after a stop."""
        self._endpoint = CloudEndpoint(self.state_dir, port=self._port, persist_moto=False).start()
        self._port = int(self._endpoint.endpoint_url.rsplit(":", 1)[1])
        return self

    @property
    def running(self) -> bool:
        return self._endpoint is not None

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None

    def env(self) -> dict[str, str]:
        """What points every boto3 client at the endpoint (the same before and after a restart)."""
        if self._endpoint is None:
            raise RuntimeError("the cloud twin is not running")
        return self._endpoint.env()
