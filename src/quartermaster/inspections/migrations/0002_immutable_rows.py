"""The database's own copy of what the handlers never do, on SQLite and PostgreSQL:

- a published template version is immutable (no UPDATE or DELETE once `published_at` is set);
- an inspection's saved versions are append-only;
- an inspection is never removed (soft delete only).
"""

from django.db import migrations

SQLITE_CREATE = [
    """CREATE TRIGGER inspections_published_version_no_update
        BEFORE UPDATE ON inspections_templateversion WHEN OLD.published_at IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'a published template version is immutable'); END""",
    """CREATE TRIGGER inspections_published_version_no_delete
        BEFORE DELETE ON inspections_templateversion WHEN OLD.published_at IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'a published template version is immutable'); END""",
    """CREATE TRIGGER inspections_version_no_update BEFORE UPDATE ON inspections_inspectionversion
        BEGIN SELECT RAISE(ABORT, 'inspection versions are append-only'); END""",
    """CREATE TRIGGER inspections_version_no_delete BEFORE DELETE ON inspections_inspectionversion
        BEGIN SELECT RAISE(ABORT, 'inspection versions are append-only'); END""",
    """CREATE TRIGGER inspections_inspection_no_delete BEFORE DELETE ON inspections_inspection
        BEGIN SELECT RAISE(ABORT, 'inspections are soft-deleted, never removed'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS inspections_published_version_no_update",
    "DROP TRIGGER IF EXISTS inspections_published_version_no_delete",
    "DROP TRIGGER IF EXISTS inspections_version_no_update",
    "DROP TRIGGER IF EXISTS inspections_version_no_delete",
    "DROP TRIGGER IF EXISTS inspections_inspection_no_delete",
]

POSTGRES_CREATE = [
    """CREATE OR REPLACE FUNCTION qm_inspections_refuse() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION USING MESSAGE = TG_ARGV[0]; END
       $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER inspections_published_version_immutable
        BEFORE UPDATE OR DELETE ON inspections_templateversion
        FOR EACH ROW WHEN (OLD.published_at IS NOT NULL)
        EXECUTE FUNCTION qm_inspections_refuse('a published template version is immutable')""",
    """CREATE TRIGGER inspections_version_append_only
        BEFORE UPDATE OR DELETE ON inspections_inspectionversion
        FOR EACH ROW EXECUTE FUNCTION qm_inspections_refuse('inspection versions are append-only')""",
    """CREATE TRIGGER inspections_inspection_no_delete
        BEFORE DELETE ON inspections_inspection
        FOR EACH ROW
        EXECUTE FUNCTION qm_inspections_refuse('inspections are soft-deleted, never removed')""",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS inspections_published_version_immutable ON inspections_templateversion",
    "DROP TRIGGER IF EXISTS inspections_version_append_only ON inspections_inspectionversion",
    "DROP TRIGGER IF EXISTS inspections_inspection_no_delete ON inspections_inspection",
    "DROP FUNCTION IF EXISTS qm_inspections_refuse()",
]


def create(apps, schema_editor):  # type: ignore[no-untyped-def]
    statements = (
        POSTGRES_CREATE if schema_editor.connection.vendor == "postgresql" else SQLITE_CREATE
    )
    for statement in statements:
        schema_editor.execute(statement)


def drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    statements = POSTGRES_DROP if schema_editor.connection.vendor == "postgresql" else SQLITE_DROP
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("inspections", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
