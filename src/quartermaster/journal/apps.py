from django.apps import AppConfig


class JournalConfig(AppConfig):
    name = "quartermaster.journal"
    label = "journal"
    verbose_name = "Journal: accounts, double-entry journal entries, balances"
