"""Every sync stream's device becomes an `identity.Device` owned by the stream's user.

A device now belongs to one user, and the batch endpoint reads that owner from identity: a stream
synced before (without a login naming its device) gets its device, and a device that another
user's login had taken over goes back to the user whose ops, temp ids and sequence numbers the
stream holds."""

import unicodedata

from django.db import migrations


def _key(device_id: str) -> str:
    # identity.invariants.device_key as of this migration, lenient: old ids were never cleaned.
    return unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", device_id).strip().casefold()
    )


def own_stream_devices(apps, schema_editor):  # type: ignore[no-untyped-def]
    DeviceSyncState = apps.get_model("sync", "DeviceSyncState")
    Device = apps.get_model("identity", "Device")
    for stream in DeviceSyncState.objects.order_by("created_at", "device_id"):
        device = Device.objects.filter(device_id=stream.device_id).first()
        if device is None and Device.objects.filter(key=_key(stream.device_id)).exists():
            continue  # a case variant of a stream's id: the first spelling keeps the device
        if device is None:
            seen = stream.last_seen or stream.created_at
            Device.objects.create(
                device_id=stream.device_id,
                key=_key(stream.device_id),
                user_id=stream.user_id,
                first_seen_at=stream.created_at,
                last_seen_at=seen,
            )
        elif device.user_id != stream.user_id:
            device.user_id = stream.user_id
            device.save(update_fields=["user"])


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0001_initial"),
        ("identity", "0003_device_key"),
    ]

    operations = [
        migrations.RunPython(own_stream_devices, migrations.RunPython.noop),
    ]
