"""Back office for the journal: accounts and entries, read-only (a ledger is never edited here;
corrections are reversing entries, posted through `journal.reverse`)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.journal.models import Account, Entry


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    read_action = "journal.read"
    list_display = ("code", "name", "kind", "opened_at")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    ordering = ("code",)


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    read_action = "journal.read"
    list_display = ("number", "posted_at", "memo", "action", "posted_by", "debit_total_minor")
    search_fields = ("number", "memo", "source_id")
    ordering = ("-seq",)
