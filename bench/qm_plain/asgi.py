"""ASGI entry point of the plain baseline (uvicorn qm_plain.asgi:application)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qm_plain.settings")
application = get_asgi_application()
