"""The market's pure rules: quantities in base units, rounding once, slots, the settlement
arithmetic."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.errors import Invalid
from quartermaster.market import invariants
from quartermaster.market.invariants import DEFAULT_SLOTS, Fee, FlowerUnit


@given(grams=st.integers(min_value=1, max_value=invariants.MAX_KG_GRAMS))
def test_a_kg_quantity_round_trips_through_the_wire(grams: int) -> None:
    wire = invariants.format_qty(grams, FlowerUnit.KG)

    assert invariants.parse_qty(wire, FlowerUnit.KG) == grams


@pytest.mark.parametrize(("wire", "grams"), [("12.5", 12_500), ("0.001", 1), ("7", 7_000)])
def test_kg_quantities_take_up_to_three_places(wire: str, grams: int) -> None:
    assert invariants.parse_qty(wire, FlowerUnit.KG) == grams


@given(
    grams=st.integers(min_value=1, max_value=invariants.MAX_KG_GRAMS),
    rate=st.integers(min_value=1, max_value=invariants.MAX_AMOUNT_MINOR),
)
def test_gross_is_qty_times_rate_rounded_half_up_once(grams: int, rate: int) -> None:
    exact = Decimal(grams) / 1000 * Decimal(rate)

    gross = invariants.gross_minor(grams, FlowerUnit.KG, rate)

    assert gross == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize(
    ("local", "slot"),
    [
        ("03:10", "s1"),
        ("04:00", "s1"),
        ("05:59", "s1"),
        ("06:00", "s2"),
        ("09:59", "s3"),
        ("13:00", "s3"),
    ],
)
def test_an_arrival_belongs_to_its_slot_or_the_last_one_begun(local: str, slot: str) -> None:
    assert invariants.slot_of(local, DEFAULT_SLOTS) == slot


@pytest.mark.parametrize("value", [True, 0, -1, "1.0000", "", " 1", "1e3", "١٢", None, 1.5])
def test_bad_quantities_are_invalid(value: object) -> None:
    with pytest.raises(Invalid):
        invariants.parse_qty(value, FlowerUnit.KG)


def test_the_settlement_arithmetic_recovers_advances_only_from_what_is_left() -> None:
    fees = (
        Fee("porter", "Porter", "சுமை", "per_unit", 150),
        Fee("cess", "Cess", "வரி", "percent_bp", 100),
        Fee("token", "Token", "டோக்கன்", "per_entry", 200),
    )

    totals = invariants.settlement_totals(
        gross=10_000,
        commission_bp=1000,
        fees=fees,
        kg_grams=2_500,
        counted_units=3,
        entries=2,
        advance_outstanding=1_000_000,
    )

    # commission 1000; porter 5.5 units x 1.50 = 8.25; cess 1 % = 1.00; token 2 x 2.00
    assert (totals.commission_minor, totals.fees_minor) == (
        1000,
        (("porter", 825), ("cess", 100), ("token", 400)),
    )
    assert (totals.advance_recovered_minor, totals.net_minor) == (7675, 0)


def test_a_settlement_whose_charges_exceed_its_gross_recovers_nothing() -> None:
    fees = (Fee("token", "Token", "டோக்கன்", "per_entry", 500),)

    totals = invariants.settlement_totals(
        gross=300,
        commission_bp=1000,
        fees=fees,
        kg_grams=0,
        counted_units=1,
        entries=1,
        advance_outstanding=5000,
    )

    assert (totals.advance_recovered_minor, totals.net_minor) == (0, -230)


def test_a_settlement_too_large_for_the_journal_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        invariants.settlement_totals(
            gross=10**15 + 1,
            commission_bp=0,
            fees=(),
            kg_grams=0,
            counted_units=1,
            entries=1,
            advance_outstanding=0,
        )

    assert refused.value.fields == {"period_to": refused.value.message}
