"""Retries with exponential backoff, jitter, and respect for the server's Retry-After."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from dcar.captioning.failures import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` calls in all; the wait before retry ``n`` (0-based) is drawn uniformly from
    ``[d/2, d]`` with ``d = min(max_delay, base_delay * 2**n)`` ("equal jitter", so that many
    workers hit by one outage do not come back in lockstep). A Retry-After from the server
    raises the wait to what it asked, up to ``max_retry_after``."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        d = min(self.max_delay, self.base_delay * (2**retry))
        wait = rng.uniform(d / 2, d)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


class Retrier:
    """Calls a function under a :class:`RetryPolicy`; thread-safe, counts retries for the report."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep, seed: int | None = None) -> None:
        self.policy = policy
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.retries = 0

    def __call__(self, fn: Callable[[], T]) -> T:
        for attempt in range(self.policy.attempts):
            try:
                return fn()
            except TransientError as err:
                if attempt + 1 >= self.policy.attempts:
                    raise
                with self._lock:
                    self.retries += 1
                    wait = self.policy.delay(attempt, self._rng, err.retry_after)
                self.sleep(wait)
        raise AssertionError("unreachable: attempts >= 1")  # pragma: no cover
