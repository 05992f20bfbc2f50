from django.db import migrations


def create_default_location(apps, schema_editor):
    Location = apps.get_model("inventory", "Location")
    if not Location.objects.filter(is_default=True).exists():
        Location.objects.create(name="Main depot", kind="depot", is_default=True)


class Migration(migrations.Migration):
    dependencies = [("inventory", "0001_initial")]

    operations = [migrations.RunPython(create_default_location, migrations.RunPython.noop)]
