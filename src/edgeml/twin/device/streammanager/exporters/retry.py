"""Exponential backoff between export attempts while a destination is unreachable or refusing data."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """First delay, cap, growth factor and jitter (a fraction of the delay) for failed export attempts.

    The real Stream Manager retries without limit at intervals of up to five minutes; the twin's default
    cap is shorter so that an outage in a test ends in seconds, not minutes.
    """

    initial_delay_s: float = 0.2
    max_delay_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.1


class Backoff:
    """Delays for consecutive failures: initial, initial*multiplier, ... up to the cap; `reset` on success."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0

    def next_delay(self) -> float:
        base = min(
            self.policy.max_delay_s, self.policy.initial_delay_s * self.policy.multiplier**self.failures
        )
        self.failures += 1
        return base * (1 + random.uniform(-self.policy.jitter, self.policy.jitter))

    def reset(self) -> None:
        self.failures = 0
