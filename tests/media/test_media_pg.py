"""Media under real concurrency on PostgreSQL: a device retrying its upload request and its
confirm from several connections at once still makes one asset, confirmed once."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import AuditEntry
from quartermaster.media.models import MediaAsset
from tests.core.test_concurrency_pg import in_parallel, token_for
from tests.media.helpers import declare, image_bytes

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_concurrent_requests_and_confirms_of_one_upload_make_one_asset(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'inspector', 'manager')}"}
    content = image_bytes("JPEG", (640, 480))
    media_id = str(uuid.uuid4())

    def ask(index: int) -> int:
        body = declare(content, id=media_id)
        reply = httpx.post(f"{base}/api/v1/media/uploads", json=body, headers=headers, timeout=60)
        return reply.status_code

    asked = Counter(in_parallel(4, ask))
    target = httpx.post(
        f"{base}/api/v1/media/uploads", json=declare(content, id=media_id), headers=headers
    ).json()["upload"]
    assert httpx.put(target["url"], content=content, headers=target["headers"]).status_code == 200

    def confirm(index: int) -> int:
        path = f"{base}/api/v1/media/{media_id}/confirm"
        return httpx.post(path, headers=headers, timeout=60).status_code

    confirmed = Counter(in_parallel(4, confirm))

    assert asked == {201: 4}
    assert confirmed == {200: 4}
    asset = MediaAsset.objects.get(pk=media_id)
    assert (asset.status, asset.width, asset.height) == ("ready", 640, 480)
    changes = AuditEntry.objects.filter(entity_type="media", entity_id=media_id)
    assert changes.filter(action="media.confirm").count() == 1
    assert verify_chain().ok
