"""Commands hold money as integer minor units, parsed once from the wire's decimal string."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from quartermaster.core.errors import Invalid
from quartermaster.core.money import Money, MoneyEdit, PositiveMoney


class Priced(BaseModel):
    price: Money = 0
    amount: PositiveMoney = 1
    edit: MoneyEdit = None


def refusal(payload: dict[str, object]) -> Invalid:
    with pytest.raises(ValidationError) as refused:
        Priced.model_validate_json(json.dumps(payload))
    return Invalid.from_errors(refused.value.errors())


def test_the_wire_string_becomes_minor_units_and_dumps_back_unchanged() -> None:
    parsed = Priced.model_validate_json('{"price": "12.50", "amount": "0.01", "edit": "3"}')

    assert (parsed.price, parsed.amount, parsed.edit) == (1250, 1, 300)
    # A command's fingerprint is its JSON dump: the same as before money was typed.
    assert parsed.model_dump(mode="json") == {"price": "12.50", "amount": "0.01", "edit": "3.00"}
    assert Priced.model_validate_json("{}").edit is None


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"price": 12}, "price", "decimal string"),  # rupees or paise? refused
        ({"price": "-1.00"}, "price", "0 or more"),
        ({"amount": "0.00"}, "amount", "more than 0"),
        ({"price": "1.005"}, "price", "2 decimal places"),
        ({"price": "\uff11\uff12"}, "price", "decimal string"),  # fullwidth digits
        ({"edit": True}, "edit", "decimal string"),
    ],
)
def test_a_refused_amount_names_its_field_alone(
    payload: dict[str, object], field: str, message: str
) -> None:
    error = refusal(payload)

    assert list(error.fields or {}) == [field]
    assert message in error.message


def test_code_may_build_a_command_from_minor_units() -> None:
    assert Priced(price=1250).price == 1250
    with pytest.raises(ValidationError):
        Priced(price=True)  # type: ignore[arg-type]


def test_several_refusals_are_one_answer_naming_each() -> None:
    error = refusal({"price": "x", "amount": "0"})

    assert set(error.fields or {}) == {"price", "amount"}
    assert error.message.startswith("invalid payload: ")
