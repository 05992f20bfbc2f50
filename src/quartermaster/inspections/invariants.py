"""Pure rules of field inspections: a template's sections and questions, the answers an
inspection may hold against one template version, completeness at submit, the score, and the
answer-level merge of an offline edit. No database access.

Answers are JSON by nature (a question's answer is a boolean, a number, text, a list of media
ids...): they cross seams as `dict[str, Any]` keyed by question id, always after `clean_answers`.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from types import MappingProxyType
from typing import Any
from uuid import UUID

from django.db import models

from quartermaster.core.errors import Invalid

MAX_SECTIONS = 100
MAX_QUESTIONS = 1000
MAX_OPTIONS = 100
MAX_LABEL_LENGTH = 500
MAX_NAME_LENGTH = 200
MAX_TEXT_ANSWER_LENGTH = 10_000
MAX_COMMENT_LENGTH = 2_000
MAX_PHOTOS = 50
MAX_WEIGHT = 1_000
# A number answer or bound: finite, and inside what a double holds exactly as an integer.
MAX_NUMBER = 2**53
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NOT_APPLICABLE = "na"


class QuestionType(models.TextChoices):
    YES_NO = "yes_no"
    TEXT = "text"
    NUMBER = "number"
    SINGLE_CHOICE = "single_choice"
    MULTI_CHOICE = "multi_choice"
    DATE = "date"
    PHOTO = "photo"
    SIGNATURE = "signature"


class Status(models.TextChoices):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


# Inspections whose answers may change: a rejected one goes back to draft at its next save.
EDITABLE = frozenset({Status.DRAFT.value, Status.REJECTED.value})
CHOICE_TYPES = frozenset({QuestionType.SINGLE_CHOICE.value, QuestionType.MULTI_CHOICE.value})
# Questions a weight scores: yes earns it, no earns nothing, n/a leaves it out; a single choice
# earns its option's share (`option_scores`, percent).
SCORED_TYPES = frozenset({QuestionType.YES_NO.value, QuestionType.SINGLE_CHOICE.value})


@dataclass(frozen=True)
class Question:
    id: str
    type: str
    label: str
    required: bool = False
    options: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    unit: str = ""
    weight: int = 0
    # option → percent of the weight it earns (single_choice only)
    option_scores: tuple[tuple[str, int], ...] = ()

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "label": self.label,
            "required": self.required,
        }
        if self.options:
            view["options"] = list(self.options)
        if self.min is not None:
            view["min"] = _wire_number(self.min)
        if self.max is not None:
            view["max"] = _wire_number(self.max)
        if self.unit:
            view["unit"] = self.unit
        if self.weight:
            view["weight"] = self.weight
        if self.option_scores:
            view["option_scores"] = dict(self.option_scores)
        return view


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    questions: tuple[Question, ...]

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "questions": [question.view() for question in self.questions],
        }


@dataclass(frozen=True)
class Form:
    """One template version's questions, by id, in order."""

    sections: tuple[Section, ...]

    @cached_property
    def questions(self) -> Mapping[str, Question]:
        # Built once per form: a published form is kept per process (selectors.published_form)
        # and read for every answer of every save (rebuilt each time, a quarter of a bulk
        # run's time on a 200-question template). Read-only: the form is shared.
        return MappingProxyType({q.id: q for section in self.sections for q in section.questions})

    def view(self) -> list[dict[str, Any]]:
        return [section.view() for section in self.sections]


def _wire_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# -- templates --


def clean_name(value: Any, field: str = "name", *, limit: int = MAX_NAME_LENGTH) -> str:
    if not isinstance(value, str):
        raise Invalid.field(field, "must be a string")
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        raise Invalid.field(field, "must not be blank")
    if len(text) > limit:
        raise Invalid.field(field, f"at most {limit} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise Invalid.field(field, "must not contain control characters")
    return text


def clean_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise Invalid.field(field, "1 to 64 letters, digits, '_', '.' or '-'")
    return value


def clean_form(sections: Iterable[Mapping[str, Any]]) -> Form:
    """A template's sections as sent (already shaped by the wire schema) → a `Form`; Invalid
    names every bad field. Ids are unique across the whole template."""
    raw = list(sections)
    if not raw:
        raise Invalid.field("sections", "at least one section")
    if len(raw) > MAX_SECTIONS:
        raise Invalid.field("sections", f"at most {MAX_SECTIONS} sections")
    seen: set[str] = set()
    cleaned: list[Section] = []
    count = 0
    for s_index, section in enumerate(raw):
        where = f"sections[{s_index}]"
        section_id = clean_id(section.get("id"), f"{where}.id")
        if section_id in seen:
            raise Invalid.field(f"{where}.id", "ids must be unique in a template")
        seen.add(section_id)
        questions: list[Question] = []
        for q_index, question in enumerate(section.get("questions") or ()):
            cleaned_question = clean_question(question, f"{where}.questions[{q_index}]")
            if cleaned_question.id in seen:
                raise Invalid.field(
                    f"{where}.questions[{q_index}].id", "ids must be unique in a template"
                )
            seen.add(cleaned_question.id)
            questions.append(cleaned_question)
        if not questions:
            raise Invalid.field(f"{where}.questions", "at least one question")
        count += len(questions)
        title = clean_name(section.get("title"), f"{where}.title", limit=MAX_LABEL_LENGTH)
        cleaned.append(Section(section_id, title, tuple(questions)))
    if count > MAX_QUESTIONS:
        raise Invalid.field("sections", f"at most {MAX_QUESTIONS} questions")
    return Form(tuple(cleaned))


def clean_question(raw: Mapping[str, Any], where: str) -> Question:
    question_id = clean_id(raw.get("id"), f"{where}.id")
    kind = raw.get("type")
    if kind not in QuestionType.values:
        raise Invalid.field(f"{where}.type", f"one of {', '.join(QuestionType.values)}")
    label = clean_name(raw.get("label"), f"{where}.label", limit=MAX_LABEL_LENGTH)
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise Invalid.field(f"{where}.required", "must be a boolean")
    options = _clean_options(raw.get("options"), kind, where)
    low, high = _clean_bounds(raw.get("min"), raw.get("max"), kind, where)
    unit = raw.get("unit") or ""
    if unit:
        if kind != QuestionType.NUMBER:
            raise Invalid.field(f"{where}.unit", "only number questions have a unit")
        unit = clean_name(unit, f"{where}.unit", limit=20)
    weight = raw.get("weight") or 0
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise Invalid.field(f"{where}.weight", f"an integer from 0 to {MAX_WEIGHT}")
    if weight and kind not in SCORED_TYPES:
        raise Invalid.field(f"{where}.weight", "only yes_no and single_choice are scored")
    scores = _clean_option_scores(raw.get("option_scores"), kind, options, weight, where)
    return Question(question_id, kind, label, required, options, low, high, unit, weight, scores)


def _clean_options(raw: Any, kind: str, where: str) -> tuple[str, ...]:
    if kind not in CHOICE_TYPES:
        if raw:
            raise Invalid.field(f"{where}.options", "only choice questions have options")
        return ()
    if not isinstance(raw, list) or not raw or len(raw) > MAX_OPTIONS:
        raise Invalid.field(f"{where}.options", f"1 to {MAX_OPTIONS} options")
    options = tuple(
        clean_name(option, f"{where}.options[{i}]", limit=MAX_LABEL_LENGTH)
        for i, option in enumerate(raw)
    )
    if len(set(options)) != len(options):
        raise Invalid.field(f"{where}.options", "options must be distinct")
    return options


def _clean_bounds(low: Any, high: Any, kind: str, where: str) -> tuple[float | None, float | None]:
    if kind not in (QuestionType.NUMBER, QuestionType.PHOTO):
        if low is not None or high is not None:
            raise Invalid.field(f"{where}.min", "only number and photo questions have bounds")
        return None, None
    counts = kind == QuestionType.PHOTO
    for name, value in (("min", low), ("max", high)):
        if value is None:
            continue
        if counts and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PHOTOS
        ):
            raise Invalid.field(f"{where}.{name}", f"a photo count from 0 to {MAX_PHOTOS}")
        if not counts and not _is_number(value):
            raise Invalid.field(f"{where}.{name}", "must be a finite number")
    if low is not None and high is not None and low > high:
        raise Invalid.field(f"{where}.min", "must not exceed max")
    return low, high


def _clean_option_scores(
    raw: Any, kind: str, options: tuple[str, ...], weight: int, where: str
) -> tuple[tuple[str, int], ...]:
    if raw is None:
        if weight and kind == QuestionType.SINGLE_CHOICE:
            raise Invalid.field(f"{where}.option_scores", "a weighted choice scores its options")
        return ()
    if kind != QuestionType.SINGLE_CHOICE or not isinstance(raw, dict):
        raise Invalid.field(f"{where}.option_scores", "only single_choice, {option: percent}")
    for option, percent in raw.items():
        if option not in options:
            raise Invalid.field(f"{where}.option_scores", f"{option!r} is not an option")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise Invalid.field(f"{where}.option_scores", "percentages from 0 to 100")
    return tuple((option, raw[option]) for option in options if option in raw)


def check_ids_stable(earlier: Iterable[Form], form: Form) -> None:
    """A question id keeps its type in every version of a template: answers recorded against
    an earlier version must mean the same thing."""
    known: dict[str, str] = {}
    for version in earlier:
        for question in version.questions.values():
            known.setdefault(question.id, question.type)
    for question in form.questions.values():
        was = known.get(question.id)
        if was is not None and was != question.type:
            raise Invalid.field(
                f"questions.{question.id}", f"was a {was} question; a new id for a new type"
            )


# -- answers --


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and abs(value) <= MAX_NUMBER


def _is_media_id(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def answer_problem(question: Question, value: Any) -> str | None:
    """Why `value` cannot answer `question` (types and bounds, checked on every save), or None."""
    kind = question.type
    if kind == QuestionType.YES_NO:
        return (
            None
            if value is True or value is False or value == NOT_APPLICABLE
            else ('true, false or "na"')
        )
    if kind == QuestionType.TEXT:
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > MAX_TEXT_ANSWER_LENGTH:
            return f"at most {MAX_TEXT_ANSWER_LENGTH} characters"
        return None if "\x00" not in value else "must not contain NUL characters"
    if kind == QuestionType.NUMBER:
        return _number_problem(question, value)
    if kind == QuestionType.SINGLE_CHOICE:
        return None if isinstance(value, str) and value in question.options else "not an option"
    if kind == QuestionType.MULTI_CHOICE:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and v in question.options for v in value
        ):
            return "a list of options"
        return None if len(set(value)) == len(value) else "options must be distinct"
    if kind == QuestionType.DATE:
        return None if _is_date(value) else "a date, YYYY-MM-DD"
    if kind == QuestionType.PHOTO:
        return _photo_problem(question, value)
    return None if _is_media_id(value) else "a media id"  # signature


def _number_problem(question: Question, value: Any) -> str | None:
    if not _is_number(value):
        return "must be a finite number"
    if question.min is not None and value < question.min:
        return f"at least {_wire_number(question.min)}"
    if question.max is not None and value > question.max:
        return f"at most {_wire_number(question.max)}"
    return None


def _photo_problem(question: Question, value: Any) -> str | None:
    if not isinstance(value, list) or not all(_is_media_id(v) for v in value):
        return "a list of media ids"
    if len(set(value)) != len(value):
        return "media ids must be distinct"
    limit = int(question.max) if question.max is not None else MAX_PHOTOS
    return None if len(value) <= limit else f"at most {limit} photos"


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def clean_answers(form: Form, patch: Mapping[str, Any]) -> dict[str, Any]:
    """A patch of answers checked against the template version: every key a question of it,
    every value of its type and in its bounds; `None` clears an answer. Invalid names every bad
    answer as `answers.<question id>`."""
    questions = form.questions
    problems: dict[str, str] = {}
    for question_id, value in patch.items():
        question = questions.get(question_id)
        if question is None:
            problems[f"answers.{question_id}"[:200]] = "not a question of this template version"
            continue
        if value is None:
            continue
        problem = answer_problem(question, value)
        if problem is not None:
            problems[f"answers.{question_id}"] = problem
    if problems:
        raise Invalid("answers do not fit the template", fields=problems)
    return dict(patch)


def media_of(form: Form, answers: Mapping[str, Any]) -> dict[str, tuple[UUID, ...]]:
    """The media ids each photo and signature answer names (answers already cleaned)."""
    found: dict[str, tuple[UUID, ...]] = {}
    for question_id, value in answers.items():
        question = form.questions.get(question_id)
        if question is None or value is None:
            continue
        if question.type == QuestionType.PHOTO:
            found[question_id] = tuple(UUID(v) for v in value)
        elif question.type == QuestionType.SIGNATURE:
            found[question_id] = (UUID(value),)
    return found


def check_media(
    named: Mapping[str, tuple[UUID, ...]],
    usable: Mapping[UUID, int],
    *,
    max_total_bytes: int,
) -> None:
    """Every media id an answer names must be usable (confirmed, and the actor's to attach;
    `usable` maps each to its size), and their sizes together within the inspection's limit."""
    problems = {
        f"answers.{question_id}": "only confirmed media of yours can be attached"
        for question_id, ids in named.items()
        if any(media_id not in usable for media_id in ids)
    }
    if problems:
        raise Invalid("media must be uploaded and confirmed first", fields=problems)
    every = {media_id for ids in named.values() for media_id in ids}
    total = sum(usable[media_id] for media_id in every)
    if total > max_total_bytes:
        raise Invalid.field(
            "answers", f"the media of one inspection may hold at most {max_total_bytes} bytes"
        )


def apply_patch(answers: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The answers after a cleaned patch (a `None` value removes the answer)."""
    result = dict(answers)
    for question_id, value in patch.items():
        if value is None:
            result.pop(question_id, None)
        else:
            result[question_id] = value
    return result


def missing_answers(form: Form, answers: Mapping[str, Any]) -> dict[str, str]:
    """What keeps an inspection from being submitted: required answers absent (an empty list or
    blank text is absent) and photo counts under their minimum."""
    missing: dict[str, str] = {}
    for question in form.questions.values():
        value = answers.get(question.id)
        absent = value is None or value == [] or (isinstance(value, str) and not value.strip())
        if absent and question.required:
            missing[f"answers.{question.id}"] = "required"
        elif question.type == QuestionType.PHOTO and question.min:
            have = len(value) if isinstance(value, list) else 0
            if have < question.min and (question.required or have):
                missing[f"answers.{question.id}"] = f"at least {int(question.min)} photos"
    return missing


@dataclass(frozen=True)
class Score:
    """Weights earned of weights possible; unanswered scored questions count as possible."""

    earned: int
    possible: int

    @property
    def percent_bp(self) -> int | None:
        """Basis points, rounded half up; None when nothing is scored."""
        if self.possible == 0:
            return None
        return (self.earned * 10_000 * 2 + self.possible) // (self.possible * 2)

    def view(self) -> dict[str, Any]:
        bp = self.percent_bp
        return {
            "earned": self.earned,
            "possible": self.possible,
            "percent": None if bp is None else f"{bp // 100}.{bp % 100:02d}",
        }


def score(form: Form, answers: Mapping[str, Any]) -> Score:
    """Each weighted question: yes earns its weight, no nothing, n/a is left out; a single
    choice earns its option's percent of the weight (rounded down, in whole weight units x100
    so no share is lost)."""
    earned = possible = 0
    for question in form.questions.values():
        if not question.weight:
            continue
        value = answers.get(question.id)
        if value == NOT_APPLICABLE:
            continue
        possible += question.weight * 100
        if question.type == QuestionType.YES_NO and value is True:
            earned += question.weight * 100
        elif question.type == QuestionType.SINGLE_CHOICE and isinstance(value, str):
            earned += question.weight * dict(question.option_scores).get(value, 0)
    return Score(earned, possible)


# -- the answer-level merge --


@dataclass(frozen=True)
class MergePlan:
    """How an edit written against an older version meets the current answers: `apply` what
    to write; `conflicting` the answers the edit and someone else both changed (to different
    values); `theirs` the answers others changed since the base."""

    apply: dict[str, Any]
    conflicting: tuple[str, ...]
    theirs: tuple[str, ...]


def plan_merge(
    current: Mapping[str, Any], patch: Mapping[str, Any], changed_by_others: Iterable[str]
) -> MergePlan:
    """Answers changed on one side only merge by themselves; one changed on both sides to
    different values is a conflict; changed on both to the same value is no conflict."""
    theirs = frozenset(changed_by_others)
    conflicting = sorted(
        question_id
        for question_id, value in patch.items()
        if question_id in theirs and current.get(question_id) != value
    )
    return MergePlan(dict(patch), tuple(conflicting), tuple(sorted(theirs)))


def merge_resolution(
    base: Mapping[str, Any] | None,
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
    merged: Mapping[str, Any],
) -> dict[str, Any]:
    """The answers to write when a conflict is resolved by `merge`: each of mine the server did
    not change since base merges by itself; each changed on both sides needs a `merged` value
    (Invalid names every one missing); `merged` may also set any other answer."""
    base = base or {}
    result: dict[str, Any] = {}
    missing: list[str] = []
    for question_id, value in mine.items():
        if question_id in merged or value == theirs.get(question_id):
            continue
        if base.get(question_id) == theirs.get(question_id):
            result[question_id] = value  # only mine changed it
        else:
            missing.append(question_id)
    if missing:
        raise Invalid(
            "answers changed on both sides need a merged value",
            fields={f"merged.answers.{q}": "changed on both sides" for q in sorted(missing)},
        )
    result.update(merged)
    return result


def diff_answers(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Added, removed and changed answers between two versions."""
    return {
        "added": {q: after[q] for q in sorted(after.keys() - before.keys())},
        "removed": {q: before[q] for q in sorted(before.keys() - after.keys())},
        "changed": {
            q: {"from": before[q], "to": after[q]}
            for q in sorted(before.keys() & after.keys())
            if before[q] != after[q]
        },
    }


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return sorted(q for q in before.keys() | after.keys() if before.get(q) != after.get(q))


def clean_comment(value: Any, *, required: bool) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid.field("comment", "a rejection says why")
        return ""
    return clean_name(value, "comment", limit=MAX_COMMENT_LENGTH)
