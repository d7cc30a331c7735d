"""`Answer`: the future result of one request, cheaper than `concurrent.futures.Future`.

A `Future` builds a Condition (an RLock and a waiter deque) per request, and `set_result` takes it and
notifies; for a small model at batch 32 that was ~3 us of the app's ~13 us per result (docs/inference-app.md).
An Answer is two plain locks: `_gate` is held from creation until the result is set, so waiting for it is one
`acquire` (the C lock's own timed wait); `_claim` makes the first `set_result` the only one (the batcher and a
stopping app may race to answer the same request). What the app's callers use is kept: `result(timeout)`
(raises the builtin TimeoutError on every Python, where a Future raised `concurrent.futures.TimeoutError`,
not the builtin before Python 3.11), `done()` and `add_done_callback`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgeml_inference.results import InferenceResult

_log = logging.getLogger(__name__)
_allocate = threading.Lock
_CALLBACKS = threading.Lock()  # guards every Answer's callback list (registrations are rare and short)


class Answer:
    """Resolved once with an InferenceResult; any number of threads may wait for it."""

    __slots__ = ("_callbacks", "_claim", "_gate", "_result")

    def __init__(self) -> None:
        self._result: InferenceResult | None = None
        self._gate = _allocate()
        self._gate.acquire()
        self._claim = _allocate()
        self._callbacks: list[Callable[[Answer], None]] | None = None

    def done(self) -> bool:
        return self._result is not None

    def result(self, timeout: float | None = None) -> InferenceResult:
        """The result, waiting up to `timeout` seconds (None: for ever); TimeoutError past it."""
        result = self._result
        if result is not None:
            return result
        gate = self._gate
        if not gate.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise TimeoutError(f"no result within {timeout} s")
        gate.release()  # the gate stays open for every other waiter
        assert self._result is not None
        return self._result

    def set_result(self, result: InferenceResult) -> bool:
        """Resolves the answer; False (and nothing changes) if it was already resolved."""
        if not self._claim.acquire(blocking=False):
            return False
        self._result = result
        with _CALLBACKS:
            callbacks, self._callbacks = self._callbacks, None
        self._gate.release()
        if callbacks:
            for callback in callbacks:
                self._run(callback)
        return True

    def add_done_callback(self, callback: Callable[[Answer], None]) -> None:
        """Calls `callback(answer)` once resolved: on the resolving thread, or now if it already is."""
        with _CALLBACKS:
            if self._result is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        self._run(callback)

    def _run(self, callback: Callable[[Answer], None]) -> None:
        try:
            callback(self)
        except Exception:  # as Future does: a callback's failure is logged, never raised into the resolver
            _log.exception("answer callback failed")
