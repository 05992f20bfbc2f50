from django.db import migrations, models


def create_in_transit_location(apps, schema_editor):
    Location = apps.get_model("inventory", "Location")
    Location.objects.get_or_create(name="(in transit)", defaults={"kind": "in_transit"})


class Migration(migrations.Migration):
    dependencies = [("inventory", "0004_virtual_locations")]

    operations = [
        migrations.AlterField(
            model_name="location",
            name="kind",
            field=models.CharField(
                choices=[
                    ("depot", "Depot"),
                    ("vehicle", "Vehicle"),
                    ("store", "Store"),
                    ("customer_site", "Customer Site"),
                    ("supplier", "Supplier"),
                    ("consumed", "Consumed"),
                    ("loss", "Loss"),
                    ("in_transit", "In Transit"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(create_in_transit_location, migrations.RunPython.noop),
    ]
