from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "quartermaster.core"
    label = "core"
    verbose_name = "Core: audit chain, change feed, idempotency"
