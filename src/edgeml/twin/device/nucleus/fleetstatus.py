"""Fleet status messages (NUC status/FleetStatusService.java, status/model/FleetStatusDetails.java,
ComponentDetails.java): published to `$aws/things/{thing}/greengrassv2/health/json`; overallDeviceStatus
is UNHEALTHY iff a component is BROKEN (getOverallStatusBasedOnServiceState; ERRORED does not count);
sent at launch, after each deployment, and on a component entering ERRORED, BROKEN, RUNNING or FINISHED
(2.12.3+).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)
TOPIC = "$aws/things/{thing}/greengrassv2/health/json"
STATUS_CHANGE_STATES = ("ERRORED", "BROKEN", "RUNNING", "FINISHED")


class FleetStatusPublisher:
    """Builds and publishes the messages on its own thread (a lifecycle thread never waits on the cloud)."""

    def __init__(
        self, thing: str, iot_data: Any, build: Callable[[str, dict[str, Any] | None], dict[str, Any]]
    ) -> None:
        self.thing = thing
        self.iot_data = iot_data
        self._build = build
        self._queue: queue.Queue[tuple[str, dict[str, Any] | None] | None] = queue.Queue()
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name=f"fss:{thing}", daemon=True)
        self.published: list[dict[str, Any]] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def send(self, trigger: str, deployment: dict[str, Any] | None = None) -> None:
        self._queue.put((trigger, deployment))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            trigger, deployment = item
            self._sequence += 1
            message = self._build(trigger, deployment)
            message.update(
                {"sequenceNumber": self._sequence, "timestamp": int(time.time() * 1000), "trigger": trigger}
            )
            try:
                self.iot_data.publish(
                    topic=TOPIC.format(thing=self.thing), qos=1, payload=json.dumps(message)
                )
                self.published.append(message)
            except Exception:
                LOG.warning("fleet status publish failed for %s", self.thing, exc_info=True)


def overall_status(states: dict[str, str]) -> str:
    return "UNHEALTHY" if any(state == "BROKEN" for state in states.values()) else "HEALTHY"
