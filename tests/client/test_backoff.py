"""Retry delays: 1, 2, 4, 8, 16 s … capped, each jittered within known bounds."""

from __future__ import annotations

import random

import pytest

from quartermaster.client.backoff import Backoff


def test_the_nominal_schedule_doubles_from_one_second_up_to_the_cap() -> None:
    backoff = Backoff(base_s=1, cap_s=60)

    schedule = [backoff.nominal_s(attempt) for attempt in range(9)]

    assert schedule == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_without_jitter_the_delays_are_exactly_the_schedule() -> None:
    backoff = Backoff(base_s=1, cap_s=16, jitter=0)

    assert [backoff.delay_s(attempt) for attempt in range(6)] == [1, 2, 4, 8, 16, 16]


def test_jittered_delays_stay_within_twenty_percent_of_the_schedule_and_spread() -> None:
    backoff = Backoff(base_s=1, cap_s=60, jitter=0.2, rng=random.Random(7))

    for attempt in range(10):
        samples = [backoff.delay_s(attempt) for _ in range(500)]
        nominal = backoff.nominal_s(attempt)
        assert min(samples) >= nominal * 0.8
        assert max(samples) <= nominal * 1.2
        # Devices that failed together must not retry together: the draws really spread.
        assert max(samples) - min(samples) > nominal * 0.3


def test_jitter_applies_after_the_cap_so_capped_retries_still_spread() -> None:
    backoff = Backoff(cap_s=10, jitter=0.5)

    assert backoff.bounds_s(50) == (5.0, 15.0)


def test_huge_attempt_numbers_do_not_overflow() -> None:
    backoff = Backoff(base_s=1, cap_s=30)

    assert backoff.nominal_s(100_000) == 30


@pytest.mark.parametrize(
    "kwargs",
    [{"base_s": 0}, {"base_s": 5, "cap_s": 1}, {"factor": 0.5}, {"jitter": 1.0}, {"jitter": -0.1}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]
