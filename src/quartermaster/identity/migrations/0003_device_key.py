"""Device ids become one device case-insensitively: a unique `key` (NFKC, case-folded).

Existing case variants of one id keep their rows: the first seen holds the key (and is revoked if
any variant was, so no spelling of a revoked id logs in again); later ones get a key of their own
that no cleaned id can produce (it holds a control character), so they can no longer be used."""

import unicodedata

from django.db import migrations, models


def _key(device_id: str) -> str:
    # invariants.device_key as of this migration, lenient: old ids were never cleaned.
    return unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", device_id).strip().casefold()
    )


def fill_keys(apps, schema_editor):  # type: ignore[no-untyped-def]
    Device = apps.get_model("identity", "Device")
    holders: dict[str, object] = {}
    for device in Device.objects.order_by("first_seen_at", "device_id"):
        key = _key(device.device_id)
        holder = holders.get(key)
        if holder is None:
            holders[key] = device
            device.key = key
            device.save(update_fields=["key"])
            continue
        device.key = f"{key}\x01{device.device_id}"
        device.save(update_fields=["key"])
        if device.revoked_at is not None and holder.revoked_at is None:  # type: ignore[attr-defined]
            holder.revoked_at = device.revoked_at  # type: ignore[attr-defined]
            holder.save(update_fields=["revoked_at"])  # type: ignore[attr-defined]


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0002_device"),
    ]

    operations = [
        migrations.AddField(
            model_name="device",
            name="key",
            field=models.CharField(max_length=800, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="device",
            name="key",
            field=models.CharField(max_length=800, unique=True),
        ),
    ]
