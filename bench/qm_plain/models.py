"""Unmanaged views of Quartermaster's tables: the baseline writes the same rows."""

from __future__ import annotations

from django.db import models


class Location(models.Model):
    id = models.UUIDField(primary_key=True)
    is_default = models.BooleanField()

    class Meta:
        managed = False
        db_table = "inventory_location"


class Stock(models.Model):
    item_id = models.UUIDField()
    location_id = models.UUIDField()
    qty = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "inventory_stock"
