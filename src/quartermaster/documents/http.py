"""What every document endpoint shares at the HTTP edge: `?lang=`, the PDF answer, its OpenAPI."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpResponse
from pydantic import BaseModel, ConfigDict

PDF_CONTENT_TYPE = "application/pdf"

# ninja describes JSON bodies; a PDF answer is declared by hand.
PDF_RESPONSE: dict[str, Any] = {
    "responses": {
        "200": {
            "description": "The document as PDF",
            "content": {PDF_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


class DocumentQuery(BaseModel):
    """`?lang=en|ta`; without it, the document's default (the request's or the farmer's)."""

    model_config = ConfigDict(extra="forbid")
    lang: Literal["en", "ta"] | None = None


def pdf_response(pdf: bytes, *, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type=PDF_CONTENT_TYPE)
    # inline: a phone's browser shows it; the name is ours (numbers), never a user's text.
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
