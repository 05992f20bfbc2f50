"""English and Tamil error messages: `Accept-Language` chooses the language of `error` (and of
`fields`), `code` never changes; the Tamil catalogue is compiled and up to date."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.utils import translation

from quartermaster.core import catalogues
from quartermaster.core.i18n import say, template_pattern
from tests.conftest import Api

pytestmark = pytest.mark.django_db

TAMIL = {"Accept-Language": "ta"}


def test_an_unknown_route_answers_in_tamil_with_the_same_code(anon: Api) -> None:
    reply = anon.get("/api/v1/nope", headers=TAMIL)

    assert reply.status == 404
    assert reply.body == {"error": "கிடைக்கவில்லை", "code": "not_found"}
    assert reply.headers["content-language"] == "ta"
    assert "Accept-Language" in reply.headers["vary"]


def test_english_is_the_default_and_the_contract_body_is_unchanged(anon: Api) -> None:
    for headers in ({}, {"Accept-Language": "en"}, {"Accept-Language": "fr, de;q=0.5"}):
        reply = anon.get("/api/v1/nope", headers=headers)

        assert reply.body == {"error": "not_found", "code": "not_found"}
        assert reply.headers["content-language"] == "en"


def test_a_record_not_found_answers_in_tamil(admin: Api) -> None:
    reply = admin.get(
        f"/api/v1/items/{uuid.uuid4()}", headers={"Accept-Language": "ta-IN,en;q=0.8"}
    )

    assert reply.status == 404
    assert reply.body == {"error": "கிடைக்கவில்லை", "code": "not_found"}


def test_a_validation_error_names_each_field_in_tamil(admin: Api) -> None:
    reply = admin.post("/api/v1/market/flowers", {"code": "jasmine"}, headers=TAMIL)

    assert reply.status == 400
    assert reply.body["code"] == "invalid"
    assert reply.body["fields"]["name"] == "இந்தப் புலம் தேவை"
    assert reply.body["error"].startswith("தவறான கோரிக்கை: ")
    assert "name: இந்தப் புலம் தேவை" in reply.body["error"]


def test_a_broken_invariant_with_a_value_in_it_is_said_in_tamil(admin: Api) -> None:
    body = {"code": "jasmine", "name": "J" * 201, "name_ta": "மல்லிகை", "unit": "kg"}

    english = admin.post("/api/v1/market/flowers", body)
    tamil = admin.post("/api/v1/market/flowers", body, headers=TAMIL)

    assert english.status == tamil.status == 400
    assert english.body == {
        "error": "at most 200 characters",
        "code": "invalid",
        "fields": {"name": "at most 200 characters"},
    }
    assert tamil.body == {
        "error": "அதிகபட்சம் 200 எழுத்துகள்",
        "code": "invalid",
        "fields": {"name": "அதிகபட்சம் 200 எழுத்துகள்"},
    }


def test_permission_denied_is_said_in_tamil(staff: Api) -> None:
    body = {"code": "rose", "name": "Rose", "name_ta": "ரோஜா", "unit": "kg"}

    reply = staff.post("/api/v1/market/flowers", body, headers=TAMIL)

    assert reply.status == 403
    assert reply.body["code"] == "permission_denied"
    assert reply.body["error"] == "staff பங்கிற்கு market.flower.create செய்ய அனுமதி இல்லை"


def test_a_version_conflict_is_said_in_tamil_with_its_code_and_snapshots(admin: Api) -> None:
    created = admin.post("/api/v1/items", {"name": "Cylinder 14kg", "qty": 3})
    item = created.body["id"]
    admin.patch(f"/api/v1/items/{item}", {"name": "Cylinder 14.2kg", "base_version": 1})

    reply = admin.patch(
        f"/api/v1/items/{item}", {"name": "Cylinder", "base_version": 1}, headers=TAMIL
    )

    assert reply.status == 409
    assert reply.body["code"] == "version_conflict"
    assert reply.body["error"] == "item இப்போது பதிப்பு 2 இல் உள்ளது, 1 இல் அல்ல"
    assert reply.body["current"]["name"] == "Cylinder 14.2kg"


def test_an_unauthenticated_request_is_refused_in_tamil(anon: Api) -> None:
    reply = anon.get("/api/v1/items", headers=TAMIL)

    assert reply.status == 401
    assert reply.body == {"error": "அங்கீகாரம் தேவை", "code": "not_authenticated"}


def test_a_message_missing_from_the_catalogue_stays_english() -> None:
    with translation.override("ta"):
        assert say("the flux capacitor is out of range") == "the flux capacitor is out of range"
        assert say("") == ""


def test_a_value_that_is_itself_a_message_is_said_too() -> None:
    with translation.override("ta"):
        said = say('Value error, must be a decimal string such as "12.50"')

    assert said == 'தவறான மதிப்பு: "12.50" போன்ற தசம எண் உரையாக இருக்க வேண்டும்'


def test_a_template_recognises_only_its_own_message() -> None:
    pattern = template_pattern("at most %(limit)s characters")

    assert pattern.fullmatch("at most 200 characters")
    assert pattern.fullmatch("at most 200 characters!") is None
    assert pattern.fullmatch("at most  characters") is None


def test_the_compiled_catalogue_is_present_and_up_to_date() -> None:
    problems = catalogues.compile_all(check_only=True)

    assert catalogues.po_files(), "no catalogue under core/locale"
    assert problems == [], "\n".join(map(str, problems))


def test_a_translation_with_other_placeholders_is_refused(tmp_path: Path) -> None:
    po = tmp_path / "ta" / "LC_MESSAGES" / "django.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"POT-Creation-Date: 2026-12-02 07:00+0000\\n"\n'
        '"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "at most %(limit)s characters"\nmsgstr "அதிகபட்சம் %(max)s எழுத்துகள்"\n\n'
        'msgid "unknown flower"\nmsgstr ""\n',
        encoding="utf-8",
    )

    problems = catalogues.compile_all(tmp_path)

    assert sorted(problem.why for problem in problems) == [
        "not translated",
        "placeholders differ from the message's",
    ]
    assert not po.with_suffix(".mo").exists()
