"""The back office (Django admin at /admin/): shared rules, and the read-only audit chain.

The admin is one more adapter. It asks the permission policy (core.policy) what the signed-in
user may see and do, never Django's per-model permission tables, and it changes state only by
executing commands (see identity/admin.py), so every back-office write is authorized, audited
and fed like any other. Deleting through the admin is switched off everywhere, bulk
`delete_selected` included; ledgers and the audit chain are read-only by construction.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from quartermaster.core import policy
from quartermaster.core.errors import NotFound, PermissionDenied
from quartermaster.core.models import AuditEntry
from quartermaster.core.types import Actor

# Where back-office changes come from, in the audit entries' `device` column.
BACK_OFFICE_DEVICE = "back-office"

# No bulk deletes anywhere: records are soft-deleted or reversed through commands.
admin.site.disable_action("delete_selected")
admin.site.site_header = "Quartermaster back office"
admin.site.site_title = "Quartermaster"


def back_office_actor(request: HttpRequest) -> Actor | None:
    """The signed-in user as the pipeline's Actor (the user model is identity's: read by duck
    typing, since core sits below identity)."""
    user: Any = request.user
    if not (user.is_authenticated and user.is_active):
        return None
    return Actor(
        user_id=user.pk,
        username=user.get_username(),
        role=str(getattr(user, "role", "")),
        location_ids=frozenset(user.locations.values_list("pk", flat=True))
        if hasattr(user, "locations")
        else frozenset(),
        device_id=BACK_OFFICE_DEVICE,
    )


def allowed(request: HttpRequest, action: str | None) -> bool:
    if action is None:
        return False
    actor = back_office_actor(request)
    if actor is None:
        return False
    try:
        policy.authorize(actor, action)
    except (PermissionDenied, NotFound):
        return False
    return True


class PolicyAdmin(admin.ModelAdmin):
    """A model admin whose permissions come from the policy's actions.

    `read_action` lets a user see the list and the records; `add_action` and `change_action`
    enable the forms, whose `save_model` must execute the matching command. Deletion is never
    offered. Django's own admin log is not written: the audit chain is the record of changes.
    """

    read_action: str | None = None
    add_action: str | None = None
    change_action: str | None = None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return allowed(request, self.read_action)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return allowed(request, self.read_action)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return allowed(request, self.add_action)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return allowed(request, self.change_action)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        raise NotImplementedError(f"{type(self).__name__} must save through a command")

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        raise PermissionDenied("the back office deletes nothing")

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        raise PermissionDenied("the back office deletes nothing")

    def log_addition(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None

    def log_change(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None

    def log_deletions(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None


class ReadOnlyAdmin(PolicyAdmin):
    """Lists and detail pages only: no add, change or delete, no bulk actions. For ledgers
    (audit entries, movements, invoices) and records whose commands live elsewhere."""

    actions: Any = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    read_action = "audit.read"
    list_display = ("seq", "at", "actor", "device", "action", "entity_type", "entity_id")
    list_filter = ("action", "entity_type")
    search_fields = ("entity_id", "actor", "device")
    ordering = ("-seq",)
    show_full_result_count = False
