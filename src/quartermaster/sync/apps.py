from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "quartermaster.sync"
    label = "sync"
    verbose_name = "Sync: batch ops, temp ids, device sequences, change feed"

    def ready(self) -> None:
        # Batch ops dispatch on Command.registry, which fills as each domain's services module
        # is imported: import them all now so no op type depends on what else happened to load.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("services")
