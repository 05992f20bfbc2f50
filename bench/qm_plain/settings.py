"""Settings for the plain baseline: the same database settings as Quartermaster, nothing else."""

from __future__ import annotations

from qm_whatif import apply_pool

# The very same DATABASES dict (engine options, WAL, IMMEDIATE, CONN_MAX_AGE) as the pipeline.
from quartermaster.settings import DATABASES as DATABASES
from quartermaster.settings import SECRET_KEY as SECRET_KEY

apply_pool(DATABASES)  # only under QM_BENCH_WHATIF=pool (the plain+pool baseline)

DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["qm_plain"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "qm_plain.urls"
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {"version": 1, "disable_existing_loggers": False}
