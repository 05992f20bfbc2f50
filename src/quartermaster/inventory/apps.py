from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "quartermaster.inventory"
    label = "inventory"
    verbose_name = "Inventory: items, locations, stock"
