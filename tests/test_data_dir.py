"""The suite writes its files (media, checkpoints) into a directory of its own run, never into
the repository's default data directory (./var, where a developer's own server keeps its data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import Api
from tests.media.helpers import confirmed_media

pytestmark = pytest.mark.django_db


def test_an_upload_in_a_test_lands_in_the_runs_own_directory(
    staff: Api, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_directory = tmp_path_factory.getbasetemp()
    default_media = Path.cwd() / "var" / "media"
    before = sorted(default_media.rglob("*")) if default_media.exists() else []

    media_id = confirmed_media(staff)

    stored = Path(settings.MEDIA_DIR) / "media" / media_id
    assert stored.is_file()
    assert stored.is_relative_to(run_directory)
    assert Path(settings.CHECKPOINT_DIR).is_relative_to(run_directory)
    after = sorted(default_media.rglob("*")) if default_media.exists() else []
    assert after == before
