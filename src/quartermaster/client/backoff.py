"""Retry delays for the sync loop: exponential (1, 2, 4, 8, 16 s …), capped, with jitter.

Pure: the random source is passed in, so tests can pin the schedule and its bounds. Jitter is
applied after the cap, so a fleet of devices that all hit the cap still spreads out instead of
knocking on the server in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 60.0
    # Each delay is the nominal one times a factor drawn uniformly from [1 - jitter, 1 + jitter].
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s or self.factor < 1:
            raise ValueError("backoff needs 0 < base_s <= cap_s and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def nominal_s(self, attempt: int) -> float:
        """The delay before retry number `attempt` (0 for the first retry), without jitter."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # min() on the exponent first keeps huge attempt numbers from overflowing the float.
        exponent = min(attempt, 1024)
        try:
            delay = self.base_s * self.factor**exponent
        except OverflowError:
            delay = self.cap_s
        return min(self.cap_s, delay)

    def bounds_s(self, attempt: int) -> tuple[float, float]:
        nominal = self.nominal_s(attempt)
        return nominal * (1 - self.jitter), nominal * (1 + self.jitter)

    def delay_s(self, attempt: int) -> float:
        low, high = self.bounds_s(attempt)
        return self.rng.uniform(low, high)
