"""Schemathesis against /api/v1/openapi.json with a valid admin token: for every documented
operation, generated valid and invalid inputs never cause a 5xx, and every response has a
documented status code, content type and body schema.

In process: the Django WSGI application behind schemathesis' WSGI transport, inside the test's
transaction (as Django's test client does, the per-request connection recycling is paused).
Operations are discovered from the document, so routes added later are fuzzed too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import create_user, login

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = int(os.environ.get("QM_FUZZ_EXAMPLES", "25"))


@pytest.fixture
def auth_headers(db: None) -> dict[str, str]:
    """A valid admin token, and a device for the device routes to find."""
    create_user("fuzzer", "admin")
    create_user("driver", "staff")
    login("driver", device_id="truck-07")
    return {"Authorization": f"Bearer {login('fuzzer')['access']}"}


@pytest.fixture
def in_process_requests(auth_headers: dict[str, str]) -> Iterator[None]:
    """Keep the test's connection (and transaction) across the WSGI requests.

    After every use of Django's test Client (which reconnects these handlers when it is done):
    from here on the test makes requests only through schemathesis.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(in_process_requests: None, settings: Any) -> Any:
    settings.API_REQUESTS_PER_IP = 0
    settings.API_REQUESTS_PER_USER = 0
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_lists_the_operations(api_schema: Any) -> None:
    labels = {operation.label for operation in operations(api_schema)}

    assert "GET /api/v1/items" in labels
    assert "POST /api/v1/devices/{device_id}/revoke" in labels


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(
    api_schema: Any, auth_headers: dict[str, str], mode: GenerationMode
) -> None:
    headers = auth_headers
    failures: dict[str, str] = {}
    statuses: dict[int, int] = {}

    for operation in operations(api_schema):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
        def run(case: Any) -> None:
            case.headers = {**(case.headers or {}), **headers}
            response = case.call_and_validate(checks=CHECKS)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        try:
            run()
        except Unsatisfiable:
            # Negative mode: nothing in this operation can be made invalid (no parameters, or
            # only free-form strings); positive mode covers it.
            assert mode == GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as error:  # collect all, then report
            failures[operation.label] = str(error)[:3000]

    # The token works: most requests got past authentication.
    assert statuses.get(200, 0) > 0
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
