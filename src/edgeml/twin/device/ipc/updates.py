"""Component update announcements: PreComponentUpdateEvent, DeferComponentUpdate, PostComponentUpdateEvent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from edgeml.twin.device.ipc.errors import InvalidArgumentsError, ServiceError
from edgeml.twin.device.ipc.streams import OperationStream, encode_json

COMPONENT_UPDATE_EVENTS = "aws.greengrass#ComponentUpdatePolicyEvents"


@dataclass(frozen=True)
class Deferral:
    """A component's answer to a PreComponentUpdateEvent that asked to wait `recheck_after_ms`."""

    component: str
    deployment_id: str
    recheck_after_ms: int
    message: str | None = None


@dataclass(eq=False)
class _Announcement:
    deployment_id: str
    awaiting: set[str]
    answers: dict[str, Deferral] = field(default_factory=dict)
    all_answered: asyncio.Event = field(default_factory=asyncio.Event)


class ComponentUpdates:
    """SubscribeToComponentUpdates streams and the announcement in progress; lives on the event loop."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, OperationStream]] = []
        self._current: _Announcement | None = None

    def subscribe(self, component: str, stream: OperationStream) -> Callable[[], None]:
        entry = (component, stream)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def _live(self) -> list[tuple[str, OperationStream]]:
        return [(name, stream) for name, stream in self._subscribers if not stream.closed]

    async def announce(self, deployment_id: str, wait_s: float) -> list[Deferral]:
        """Sends the pre-update event and collects answers until every subscribed component has
        answered or `wait_s` passed. Returns the deferrals (answers with recheck_after_ms > 0)."""
        live = self._live()
        announcement = _Announcement(deployment_id, {name for name, _ in live})
        self._current = announcement
        event = encode_json({"preUpdateEvent": {"deploymentId": deployment_id, "isGgcRestarting": False}})
        for _, stream in live:
            stream.send_event(COMPONENT_UPDATE_EVENTS, event)
        try:
            if announcement.awaiting:
                await asyncio.wait_for(announcement.all_answered.wait(), wait_s)
        except TimeoutError:
            pass
        finally:
            self._current = None
        return [answer for answer in announcement.answers.values() if answer.recheck_after_ms > 0]

    def finished(self, deployment_id: str) -> None:
        """Sends the post-update event to every subscriber."""
        event = encode_json({"postUpdateEvent": {"deploymentId": deployment_id}})
        for _, stream in self._live():
            stream.send_event(COMPONENT_UPDATE_EVENTS, event)

    def defer(
        self, component: str, deployment_id: str | None, recheck_after_ms: int, message: str | None
    ) -> None:
        """Handles DeferComponentUpdate (recheck_after_ms 0 means: go ahead)."""
        if not any(name == component for name, _ in self._live()):
            raise InvalidArgumentsError(f"{component} is not subscribed to component updates")
        current = self._current
        if current is None or (deployment_id is not None and deployment_id != current.deployment_id):
            raise ServiceError(
                "Time limit to respond to PreComponentUpdateEvent exceeded or no update pending"
            )
        current.answers[component] = Deferral(component, current.deployment_id, recheck_after_ms, message)
        current.awaiting.discard(component)
        if not current.awaiting:
            current.all_answered.set()
