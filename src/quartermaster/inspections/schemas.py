"""Wire schemas for inspections. Strict: a boolean is not an integer. Answers are JSON values
checked against the template version by the handler (their type depends on the question)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from quartermaster.core.references import WireModel
from quartermaster.core.schemas import INT63_MAX

QuestionType = Literal[
    "yes_no", "text", "number", "single_choice", "multi_choice", "date", "photo", "signature"
]


class QuestionIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictStr = Field(max_length=64)
    type: QuestionType
    label: StrictStr = Field(max_length=500)
    required: StrictBool = False
    options: list[StrictStr] | None = Field(default=None, max_length=100)
    min: StrictInt | float | None = None
    max: StrictInt | float | None = None
    unit: StrictStr | None = Field(default=None, max_length=20)
    weight: StrictInt | None = Field(default=None, ge=0, le=1000)
    option_scores: dict[str, StrictInt] | None = None


class SectionIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    id: StrictStr = Field(max_length=64)
    title: StrictStr = Field(max_length=500)
    questions: list[QuestionIn] = Field(max_length=1000)


class TemplateIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(max_length=200)
    sections: list[SectionIn] = Field(max_length=100)


class TemplateOut(BaseModel):
    id: UUID
    name: str
    version: int
    status: Literal["draft", "published"]
    latest_version: int
    published_version: int | None
    sections: list[dict[str, Any]]
    published_at: str | None
    published_by: str | None
    created_by: str
    created_at: str


class TemplatePageOut(BaseModel):
    results: list[TemplateOut]
    next_cursor: str | None


class TemplateQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1, le=INT63_MAX)


class PageQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class InspectionQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["draft", "submitted", "approved", "rejected"] | None = None
    location: UUID | None = None
    assignee: UUID | None = None
    deleted: bool = False
    limit: int | None = None
    cursor: str | None = None


class DiffQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    from_version: int = Field(alias="from", ge=1, le=INT63_MAX)
    to_version: int = Field(alias="to", ge=1, le=INT63_MAX)


class InspectionIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    template: UUID
    location: UUID
    assignee: UUID | None = None
    answers: dict[str, Any] = Field(default_factory=dict)
    client_temp_id: StrictStr | None = Field(default=None, max_length=100)


class InspectionPatchIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any]
    base_version: StrictInt | None = Field(default=None, ge=0, le=INT63_MAX)


class ApproveIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    comment: StrictStr | None = Field(default=None, max_length=2000)


class RejectIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    comment: StrictStr = Field(max_length=2000)


class ScoreOut(BaseModel):
    earned: int
    possible: int
    percent: str | None


class MergeOut(BaseModel):
    base_version: int
    theirs: list[str]
    mine: list[str]


class InspectionOut(BaseModel):
    id: UUID
    template: UUID
    template_version: int
    location: UUID
    assignee: UUID
    status: Literal["draft", "submitted", "approved", "rejected"]
    answers: dict[str, Any]
    score: ScoreOut
    review_comment: str | None
    reviewed_by: str | None
    version: int
    deleted: bool
    created_by: str
    created_at: str
    updated_at: str
    merge: MergeOut | None = None


class InspectionPageOut(BaseModel):
    results: list[InspectionOut]
    next_cursor: str | None


class VersionOut(BaseModel):
    version: int
    action: str
    status: str
    answers: dict[str, Any]
    changed: list[str]
    deleted: bool
    comment: str | None
    actor: str
    device: str | None
    device_seq: int | None
    base_version: int | None
    at: str


class VersionPageOut(BaseModel):
    results: list[VersionOut]
    next_cursor: str | None


class DiffOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")
    status: dict[str, str]
    deleted: dict[str, bool]
    answers: dict[str, Any]
