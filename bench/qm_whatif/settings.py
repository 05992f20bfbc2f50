"""Quartermaster's settings with the experiments named in QM_BENCH_WHATIF applied."""

from __future__ import annotations

from qm_whatif import apply_pool, experiments
from quartermaster.settings import *  # noqa: F403
from quartermaster.settings import DATABASES, INSTALLED_APPS

WHATIF = experiments()
INSTALLED_APPS = [*INSTALLED_APPS, "qm_whatif.apps.WhatIfConfig"]
apply_pool(DATABASES)
