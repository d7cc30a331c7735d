"""Injected time for a rollout against a light fleet: sleeping advances the twin's clock and the fleet.

A rollout's `Waiter` (edgeml.deploy.clock) on a `ManualClock`: `sleep(s)` moves the clock on in ticks of
`tick_s` and steps every agent at each tick, so an hour of rollout (rollout rates, timeouts, soaks, health
records every minute) takes the seconds the requests take.
"""

from __future__ import annotations

from edgeml.twin.cloud.service import ManualClock
from edgeml.twin.fleet.fleet import LightFleet


class FleetTime:
    def __init__(self, clock: ManualClock, fleet: LightFleet, tick_s: float = 10.0) -> None:
        self.clock = clock
        self.fleet = fleet
        self.tick_s = tick_s
        self.slept = 0.0

    def now(self) -> float:
        return self.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        remaining = seconds
        while remaining > 1e-9:
            step = min(self.tick_s, remaining)
            self.clock.advance(step)
            self.slept += step
            remaining -= step
            self.fleet.step(self.now())
