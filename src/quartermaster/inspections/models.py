"""Inspection templates (each version a row; a published one is never rewritten), inspections
(answers against one template version, soft-deleted, never removed), every saved version of an
inspection, and a device's updates held until the update it made before them arrives."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from quartermaster.inspections.invariants import Status
from quartermaster.inventory.models import Location


class Template(models.Model):
    """A template's identity, stable across its versions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    latest_version = models.PositiveIntegerField(default=1)
    # None until the first publish: inspections use the latest published version.
    published_version = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)


class TemplateVersion(models.Model):
    """One version's content. A draft may be replaced; a published row is immutable (the
    handlers never write one, and the database refuses to: migration 0002's triggers)."""

    id = models.BigAutoField(primary_key=True)
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    sections = models.JSONField()
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.CharField(max_length=150, blank=True, default="")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="inspection_tpl_version"),
        ]


class Inspection(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="inspections")
    template_version = models.PositiveIntegerField()
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="inspections"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    answers = models.JSONField(default=dict)
    # Weight units x100 (invariants.score): the percent is computed, never stored.
    score_earned = models.BigIntegerField(default=0)
    score_possible = models.BigIntegerField(default=0)
    # The manager's comments on the last rejection (kept after the inspector edits it again).
    review_comment = models.TextField(blank=True, default="")
    reviewed_by = models.CharField(max_length=150, blank=True, default="")
    version = models.BigIntegerField(default=1)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["assignee", "created_at", "id"], name="inspection_by_assignee"),
            models.Index(fields=["location", "created_at", "id"], name="inspection_by_location"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="inspection_status_known"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="inspection_version_positive"),
        ]


class InspectionVersion(models.Model):
    """The inspection as each save left it: every version is kept, none is rewritten."""

    id = models.BigAutoField(primary_key=True)
    inspection = models.ForeignKey(Inspection, on_delete=models.PROTECT, related_name="versions")
    version = models.BigIntegerField()
    action = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=Status.choices)
    answers = models.JSONField()
    # Question ids whose answers this save changed: the answer-level merge reads them.
    changed = models.JSONField(default=list)
    deleted = models.BooleanField(default=False)
    comment = models.TextField(blank=True, default="")
    actor_id = models.UUIDField(null=True)
    actor = models.CharField(max_length=150)
    device = models.CharField(max_length=200, blank=True, default="")
    device_seq = models.BigIntegerField(null=True)
    base_version = models.BigIntegerField(null=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["inspection", "version"], name="inspection_version_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["inspection", "device", "device_seq"], name="inspection_version_device"
            ),
        ]


class HeldUpdate(models.Model):
    """A numbered offline update that did not apply at once. Either it arrived before the update
    its device made just before it (`previous_seq`) and is held, to be applied right after that
    one in the device's order (ODK Central's backlog) — kept afterwards with what happened; or
    it was refused (`conflict`, `failed`), kept so the device's next update, which names it as
    its predecessor, knows it came and does not wait for it for good."""

    HELD = "held"
    APPLIED = "applied"
    CONFLICT = "conflict"
    FAILED = "failed"

    id = models.BigAutoField(primary_key=True)
    inspection = models.ForeignKey(Inspection, on_delete=models.PROTECT, related_name="+")
    device = models.CharField(max_length=200)
    device_seq = models.BigIntegerField()
    previous_seq = models.BigIntegerField(null=True)
    base_version = models.BigIntegerField(null=True)
    answers = models.JSONField()
    actor_id = models.UUIDField(null=True)
    actor = models.CharField(max_length=150)
    actor_role = models.CharField(max_length=20)
    actor_locations = models.JSONField(default=list)
    client_ts = models.CharField(max_length=40, blank=True, default="")
    status = models.CharField(max_length=10, default=HELD)
    result = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["inspection", "device", "device_seq"], name="inspection_held_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=["inspection", "device", "previous_seq", "status"],
                name="inspection_held_waiting",
            ),
        ]
