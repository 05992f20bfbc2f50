"""Item names are one name in any case or width: a `name_key` (NFKC, case-folded), unique among
live items.

Existing live items whose names already differ only in case or width keep their names: the first
created holds the key, later ones get a key of their own that no cleaned name can produce (it
holds a control character), so no new item can take any of those spellings and each can still be
renamed or deleted."""

import unicodedata

from django.db import migrations, models


def _key(name: str) -> str:
    # core.names.name_key as of this migration.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def fill_name_keys(apps, schema_editor):  # type: ignore[no-untyped-def]
    Item = apps.get_model("inventory", "Item")
    taken: set[str] = set()
    for item in Item.objects.order_by("created_at", "sku"):
        key = _key(item.name)
        if item.deleted_at is None:
            if key in taken:
                key = f"{key}\x01{item.sku}"
            taken.add(key)
        item.name_key = key
        item.save(update_fields=["name_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0005_in_transit_location"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="name_key",
            field=models.CharField(default="", max_length=800),
            preserve_default=False,
        ),
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="item",
            constraint=models.UniqueConstraint(
                condition=models.Q(("deleted_at__isnull", True)),
                fields=("name_key",),
                name="item_name_key_unique_live",
            ),
        ),
    ]
