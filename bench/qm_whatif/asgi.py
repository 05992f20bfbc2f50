"""ASGI entry point for what-if servers (uvicorn qm_whatif.asgi:application); serves the app of
DJANGO_SETTINGS_MODULE (the what-if pipeline by default, or the plain baseline).

Experiment `thread`: Django's ASGI handler opens a new ThreadSensitiveContext per request, so each
request's sync code runs in a new thread with a new database connection. Entering an outer
context with one long-lived single-thread executor per process runs every request's sync code
in the same thread, so CONN_MAX_AGE (persistent connections) works again.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qm_whatif.settings")

from django.conf import settings
from django.core.asgi import get_asgi_application

from qm_whatif import one_thread

django_application = get_asgi_application()
_sync_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-sync")
_one_thread = one_thread(settings.DATABASES["default"]["ENGINE"])


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if _one_thread and scope["type"] == "http":
        async with ThreadSensitiveContext(executor=_sync_thread):
            await django_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
