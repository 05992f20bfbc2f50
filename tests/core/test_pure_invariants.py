"""Property tests of the pure rules: no database, many generated inputs."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.audit import seal
from quartermaster.core.canonical import canonical_json
from quartermaster.core.errors import Invalid
from quartermaster.core.money import format_money, parse_money
from quartermaster.core.names import INVISIBLE_CATEGORIES, name_key
from quartermaster.inventory import invariants

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(qty=st.integers(min_value=0, max_value=10**12), delta=st.integers(-(10**12), 10**12))
def test_apply_delta_never_goes_below_zero(qty: int, delta: int) -> None:
    if qty + delta >= 0:
        assert invariants.apply_delta(qty, delta) == qty + delta
    else:
        with pytest.raises(Invalid) as raised:
            invariants.apply_delta(qty, delta)
        assert raised.value.message == "qty cannot go below 0"


@given(st.one_of(st.booleans(), st.floats(), st.text(), st.none(), st.lists(st.integers())))
def test_non_integers_are_never_quantities(value: object) -> None:
    with pytest.raises(Invalid):
        invariants.clean_qty(value)
    with pytest.raises(Invalid):
        invariants.clean_delta(value)


@given(st.integers(min_value=0, max_value=invariants.MAX_QTY))
def test_every_non_negative_integer_within_range_is_a_quantity(value: int) -> None:
    assert invariants.clean_qty(value) == value


@given(st.text())
def test_clean_name_strips_or_rejects(name: str) -> None:
    visible = not any(unicodedata.category(c) in INVISIBLE_CATEGORIES for c in name.strip())
    cleaned = unicodedata.normalize("NFC", name.strip())
    if cleaned and len(cleaned) <= invariants.MAX_NAME_LENGTH and visible:
        assert invariants.clean_name(name) == cleaned
        assert name_key(name_key(cleaned)) == name_key(cleaned)
        if cleaned.isascii():
            assert name_key(cleaned.upper()) == name_key(cleaned.lower())
    else:
        with pytest.raises(Invalid):
            invariants.clean_name(name)


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_round_trips_through_its_decimal_string(minor: int) -> None:
    text = format_money(minor)

    assert parse_money(text) == minor
    assert Decimal(text) * 100 == minor
    assert text == str((Decimal(minor) / 100).quantize(Decimal("0.01")))  # two places, always


@pytest.mark.parametrize("text", ["1.234", "abc", "", "NaN", "Infinity", "1e400"])
def test_money_rejects_what_is_not_a_two_place_decimal(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_money(text)


@given(json_values)
def test_canonical_json_ignores_key_order(value: object) -> None:
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert canonical_json(reordered) == canonical_json(value)


@given(st.dictionaries(st.text(), json_values, min_size=1), st.text(min_size=1))
def test_any_change_to_an_entry_changes_its_seal(payload: dict, extra_key: str) -> None:
    key = b"k" * 32
    original = seal("0" * 64, payload, key)
    changed = {**payload, extra_key: "tampered"} if payload.get(extra_key) != "tampered" else {}

    assert seal("0" * 64, changed, key) != original
    assert seal("1" * 64, payload, key) != original
    assert seal("0" * 64, payload, b"x" * 32) != original
