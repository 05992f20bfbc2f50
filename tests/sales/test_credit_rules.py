"""The pure rules of credit and meters (sales.invariants): allocation, ageing, readings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.errors import Invalid
from quartermaster.sales.invariants import (
    OpenItem,
    aging_bucket,
    allocate,
    check_next_reading,
    metered_consumption,
)

OPEN = [OpenItem("a", 100), OpenItem("b", 200), OpenItem("c", 300)]


def test_named_allocations_come_first_then_the_oldest() -> None:
    assert allocate(450, OPEN, [("c", 250)]) == [("c", 250), ("a", 100), ("b", 100)]


def test_money_beyond_every_open_item_is_left_over() -> None:
    plan = allocate(700, OPEN, [])
    assert plan == [("a", 100), ("b", 200), ("c", 300)]
    assert 700 - sum(amount for _, amount in plan) == 100


@pytest.mark.parametrize(
    ("money", "named", "field"),
    [
        (500, [("z", 10)], "allocations[0].invoice"),
        (500, [("a", 101)], "allocations[0].amount"),
        (50, [("b", 60)], "allocations[0].amount"),
    ],
)
def test_named_allocations_that_do_not_fit_are_refused(
    money: int, named: list[tuple[str, int]], field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        allocate(money, OPEN, named)
    assert list(refused.value.fields) == [field]


@given(
    money=st.integers(min_value=0, max_value=10**6),
    opens=st.lists(st.integers(min_value=1, max_value=10**5), max_size=8),
)
def test_an_allocation_never_takes_more_than_the_money_or_an_invoice_owes(
    money: int, opens: list[int]
) -> None:
    items = [OpenItem(index, amount) for index, amount in enumerate(opens)]
    plan = allocate(money, items, [])
    taken = sum(amount for _, amount in plan)
    assert taken == min(money, sum(opens))
    for invoice, amount in plan:
        assert 0 < amount <= opens[invoice]


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (0, "0_30"),
        (30, "0_30"),
        (31, "31_60"),
        (60, "31_60"),
        (61, "61_90"),
        (90, "61_90"),
        (91, "90_plus"),
    ],
)
def test_ageing_buckets(days: int, bucket: str) -> None:
    assert aging_bucket(days) == bucket


def test_a_meter_counts_up_unless_replaced() -> None:
    check_next_reading(last=100, reading=50, replaced=True, field="reading")
    check_next_reading(last=None, reading=0, replaced=False, field="reading")
    with pytest.raises(Invalid):
        check_next_reading(last=100, reading=99, replaced=False, field="reading")
    assert metered_consumption(last=100, reading=130, field="r") == 30
    for last in (None, 130, 131):
        with pytest.raises(Invalid):
            metered_consumption(last=last, reading=130, field="r")
