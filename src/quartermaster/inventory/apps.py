from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "quartermaster.inventory"
    label = "inventory"
    verbose_name = "Inventory: items, locations, stock"

    def ready(self) -> None:
        from quartermaster.core import events
        from quartermaster.inventory.events import out_of_stock_events

        events.install_critical_events(out_of_stock_events)
