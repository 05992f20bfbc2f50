"""The pure rules of media: type sniffing, declared uploads, signatures, ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.errors import Invalid
from quartermaster.media import invariants
from quartermaster.media.invariants import (
    MediaTypeRefused,
    PayloadTooLarge,
    RangeNotSatisfiable,
    clean_declared,
    parse_content_range,
    parse_range,
    signature,
    signature_valid,
    sniff,
)

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00", "image/heic"),
    ],
)
def test_accepted_types_are_read_from_their_magic_bytes(head: bytes, kind: str) -> None:
    assert sniff(head) == kind


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x18ftypavif\x00\x00",
        b"  <svg xmlns='http://www.w3.org/2000/svg'>",
        b"<?xml version='1.0'?>",
        b"GIF89a",
        b"",
    ],
)
def test_everything_else_is_refused(head: bytes) -> None:
    with pytest.raises(MediaTypeRefused):
        sniff(head)


def test_a_declared_upload_is_normalised_and_bounded() -> None:
    declared = clean_declared("Image/JPEG; q=1", 10, "AB" * 32, max_bytes=100)

    assert (declared.content_type, declared.sha256) == ("image/jpeg", "ab" * 32)
    assert clean_declared("image/heif", 10, "a" * 64, max_bytes=100).content_type == "image/heic"
    with pytest.raises(PayloadTooLarge):
        clean_declared("image/png", 101, "a" * 64, max_bytes=100)
    with pytest.raises(Invalid):
        clean_declared("image/svg+xml", 10, "a" * 64, max_bytes=100)


def test_a_signature_grants_one_action_on_one_key_until_it_expires() -> None:
    given_signature = signature(KEY, action="get", object_key="media/a", expires=100)

    def valid(**changes: object) -> bool:
        fields: dict[str, object] = {
            "action": "get",
            "object_key": "media/a",
            "expires": 100,
            "now": 99,
        }
        fields.update(changes)
        return signature_valid(KEY, given=given_signature, **fields)  # type: ignore[arg-type]

    assert valid()
    assert not valid(action="put")
    assert not valid(object_key="media/b")
    assert not valid(expires=101)
    assert not valid(now=101)


@given(total=st.integers(1, 10_000), first=st.integers(0, 20_000), length=st.integers(1, 20_000))
def test_a_range_is_inside_the_file_or_refused(total: int, first: int, length: int) -> None:
    try:
        found = parse_range(f"bytes={first}-{first + length - 1}", total)
    except RangeNotSatisfiable:
        assert first >= total
        return
    assert found is not None
    start, end = found
    assert 0 <= start <= end < total
    assert (start, end) == (first, min(first + length - 1, total - 1))


def test_ranges_we_do_not_serve_mean_the_whole_file() -> None:
    assert parse_range("", 10) is None
    assert parse_range("bytes=1-2,4-5", 10) is None
    assert parse_range("items=1-2", 10) is None
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=4-", 10) == (4, 9)


def test_an_upload_chunk_names_its_place_in_the_declared_size() -> None:
    assert parse_content_range("bytes 0-9/20", declared_size=20) == (0, 9)
    for header in ("bytes 0-9/21", "bytes 9-0/20", "bytes 0-20/20", "bytes */20", "0-9/20"):
        with pytest.raises(Invalid):
            parse_content_range(header, declared_size=20)
    assert invariants.SNIFF_BYTES >= 12
