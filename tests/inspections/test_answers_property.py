"""Properties of the answers validator (pure invariants, no database): any JSON value is either
accepted or refused with a message naming its question, never an exception; a value of the
question's type and in its bounds is always accepted; one outside them is always refused; the
score stays within 0..100 %; the answer-level merge never loses a one-sided change."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quartermaster.core.errors import Invalid
from quartermaster.inspections import invariants
from quartermaster.inspections.invariants import Form, Question, Section

OPTIONS = ("good", "fair", "poor")
QUESTIONS = (
    Question("yn", "yes_no", "Y", weight=3),
    Question("text", "text", "T"),
    Question("num", "number", "N", min=-5, max=10.5),
    Question(
        "one",
        "single_choice",
        "S",
        options=OPTIONS,
        weight=2,
        option_scores=(("good", 100), ("fair", 50)),
    ),
    Question("many", "multi_choice", "M", options=OPTIONS),
    Question("day", "date", "D"),
    Question("pics", "photo", "P", min=1, max=3),
    Question("sig", "signature", "Z"),
)
FORM = Form((Section("s", "S", QUESTIONS),))
BY_ID = {q.id: q for q in QUESTIONS}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
media_ids = st.uuids().map(str)


def valid_value(question: Question) -> st.SearchStrategy[Any]:
    return {
        "yes_no": st.sampled_from([True, False, "na"]),
        "text": st.text(max_size=50).filter(lambda t: "\x00" not in t),
        "number": st.integers(-5, 10) | st.floats(-5, 10.5, allow_nan=False),
        "single_choice": st.sampled_from(OPTIONS),
        "multi_choice": st.lists(st.sampled_from(OPTIONS), unique=True),
        "date": st.dates().map(lambda d: d.isoformat()),
        "photo": st.lists(media_ids, unique=True, max_size=3),
        "signature": media_ids,
    }[question.type]


valid_answers = st.fixed_dictionaries({}, optional={q.id: valid_value(q) for q in QUESTIONS})


@settings(max_examples=400, deadline=None)
@given(question=st.sampled_from(QUESTIONS), value=json_values)
def test_any_json_value_is_accepted_or_refused_by_name(question: Question, value: Any) -> None:
    try:
        cleaned = invariants.clean_answers(FORM, {question.id: value})
    except Invalid as error:
        assert error.fields == {f"answers.{question.id}": error.fields[f"answers.{question.id}"]}
        return
    assert cleaned == {question.id: value}
    assert value is None or invariants.answer_problem(question, value) is None


@settings(max_examples=300, deadline=None)
@given(answers=valid_answers)
def test_values_of_the_type_in_bounds_are_always_accepted(answers: dict[str, Any]) -> None:
    assert invariants.clean_answers(FORM, answers) == answers
    result = invariants.score(FORM, answers)
    assert 0 <= result.earned <= result.possible
    percent = result.percent_bp
    assert percent is None or 0 <= percent <= 10_000


@settings(max_examples=200, deadline=None)
@given(
    value=st.integers(11, 2**40)
    | st.integers(-(2**40), -6)
    | st.floats(10.6, 1e300)
    | st.just(math.inf)
    | st.just(math.nan)
    | st.booleans()
)
def test_numbers_outside_the_bounds_or_not_numbers_are_refused(value: Any) -> None:
    with pytest.raises(Invalid) as refused:
        invariants.clean_answers(FORM, {"num": value})
    assert list(refused.value.fields or {}) == ["answers.num"]


@settings(max_examples=100, deadline=None)
@given(photos=st.lists(media_ids, unique=True, min_size=4, max_size=10))
def test_more_photos_than_the_maximum_are_refused(photos: list[str]) -> None:
    with pytest.raises(Invalid):
        invariants.clean_answers(FORM, {"pics": photos})


@settings(max_examples=300, deadline=None)
@given(current=valid_answers, patch=valid_answers, theirs=st.sets(st.sampled_from(list(BY_ID))))
def test_the_merge_flags_exactly_the_answers_changed_on_both_sides(
    current: dict[str, Any], patch: dict[str, Any], theirs: set[str]
) -> None:
    plan = invariants.plan_merge(current, patch, theirs)

    assert set(plan.conflicting) == {q for q in patch if q in theirs and current.get(q) != patch[q]}
    merged = invariants.apply_patch(current, plan.apply)
    for question_id, value in current.items():
        if question_id not in patch:
            assert merged[question_id] == value  # their change is kept


def test_a_complete_inspection_has_nothing_missing() -> None:
    form = Form(
        (
            Section(
                "s",
                "S",
                (Question("a", "yes_no", "A", required=True), Question("p", "photo", "P", min=2)),
            ),
        )
    )
    two = [str(uuid.uuid4()), str(uuid.uuid4())]

    assert invariants.missing_answers(form, {}) == {"answers.a": "required"}
    assert invariants.missing_answers(form, {"a": False, "p": two[:1]}) == {
        "answers.p": "at least 2 photos"
    }
    assert invariants.missing_answers(form, {"a": "na", "p": two}) == {}
