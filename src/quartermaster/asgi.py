"""ASGI entry point served by uvicorn: HTTP through Django's WSGI handler behind `edge.WsgiEdge`
(one hop to a bounded thread pool), WebSocket through Channels."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quartermaster.settings")
django.setup()  # before the consumers import models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402

from quartermaster.cluster.monitor import start_watching  # noqa: E402
from quartermaster.consumers import ChangesConsumer  # noqa: E402
from quartermaster.edge import WsgiEdge  # noqa: E402

http_application = WsgiEdge(
    get_wsgi_application(),
    threads=settings.HTTP_THREADS,
    max_body_bytes=settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
)

# Under pg_auto_failover, this process records each change of primary (QM_CLUSTER_MONITOR_URL).
start_watching()

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": URLRouter([path("ws/changes", ChangesConsumer.as_asgi())]),
    }
)
