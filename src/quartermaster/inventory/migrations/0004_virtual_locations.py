from django.db import migrations

# Unbounded sources and sinks of stock; names match inventory.ledger.VIRTUAL_LOCATION_NAMES.
VIRTUAL = (("(supplier)", "supplier"), ("(consumed)", "consumed"), ("(loss)", "loss"))


def create_virtual_locations(apps, schema_editor):
    Location = apps.get_model("inventory", "Location")
    for name, kind in VIRTUAL:
        Location.objects.get_or_create(name=name, defaults={"kind": kind})


def open_ledger_for_existing_stock(apps, schema_editor):
    """Stock written before the ledger existed gets an opening receipt, so rebuild agrees."""
    Location = apps.get_model("inventory", "Location")
    Stock = apps.get_model("inventory", "Stock")
    Movement = apps.get_model("inventory", "Movement")
    MovementLine = apps.get_model("inventory", "MovementLine")
    rows = list(Stock.objects.filter(qty__gt=0))
    if not rows:
        return
    supplier = Location.objects.get(name="(supplier)")
    movement = Movement.objects.create(
        kind="receipt", reason="opening balance (before the movement ledger)", actor="system"
    )
    MovementLine.objects.bulk_create(
        MovementLine(
            movement=movement,
            line_no=index,
            item_id=row.item_id,
            from_location=supplier,
            to_location_id=row.location_id,
            qty=row.qty,
            serials=[],
        )
        for index, row in enumerate(rows)
    )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0003_ledger_and_assets")]

    operations = [
        migrations.RunPython(create_virtual_locations, migrations.RunPython.noop),
        migrations.RunPython(open_ledger_for_existing_stock, migrations.RunPython.noop),
    ]
