"""The database's own copy of the journal's rules, on SQLite and PostgreSQL.

1. Append-only: triggers refuse UPDATE and DELETE on entries and lines (as on the audit table).
   Corrections are reversing entries. The balance projection is not a ledger and stays writable.
2. Balanced: an entry row carries its line count and totals (CHECK: >= 2 lines, debits =
   credits > 0), and its lines must be exactly those.
   - SQLite has no deferred triggers, so the entry is the closing row: its lines are written
     first (their foreign key to it is deferred), and a trigger on the entry's INSERT compares
     the lines present with what the entry claims. A line for an entry already written is
     refused, so a closed entry cannot grow; a line whose entry never comes fails the deferred
     foreign key at commit.
   - PostgreSQL checks at commit: a DEFERRABLE INITIALLY DEFERRED constraint trigger on both
     tables re-reads each touched entry and its lines, whatever order they were written in.
"""

from django.db import migrations

ENTRY, LINE = "journal_entry", "journal_line"

# The lines of NEW's entry disagree with what it claims (a closing row checks this on SQLite).
_SQLITE_MISMATCH = """
    (SELECT COUNT(*) FROM journal_line WHERE entry_id = NEW.id) != NEW.line_count
    OR (SELECT COALESCE(SUM(debit_minor), 0) FROM journal_line WHERE entry_id = NEW.id)
       != NEW.debit_total_minor
    OR (SELECT COALESCE(SUM(credit_minor), 0) FROM journal_line WHERE entry_id = NEW.id)
       != NEW.credit_total_minor
    OR NEW.line_count < 2 OR NEW.debit_total_minor <= 0
    OR NEW.debit_total_minor != NEW.credit_total_minor"""

SQLITE_CREATE = [
    """CREATE TRIGGER journal_entry_closes_balanced BEFORE INSERT ON journal_entry
        WHEN """
    + _SQLITE_MISMATCH
    + """
        BEGIN SELECT RAISE(ABORT, 'journal entry does not balance or its lines differ'); END""",
    """CREATE TRIGGER journal_line_before_entry BEFORE INSERT ON journal_line
        WHEN EXISTS (SELECT 1 FROM journal_entry WHERE id = NEW.entry_id)
        BEGIN SELECT RAISE(ABORT, 'journal entry is closed: its lines come before it'); END""",
    *(
        f"""CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table}
            BEGIN SELECT RAISE(ABORT, 'journal entries and lines are append-only'); END"""
        for table in (ENTRY, LINE)
        for verb in ("update", "delete")
    ),
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS journal_entry_closes_balanced",
    "DROP TRIGGER IF EXISTS journal_line_before_entry",
    *(
        f"DROP TRIGGER IF EXISTS {table}_no_{verb}"
        for table in (ENTRY, LINE)
        for verb in ("update", "delete")
    ),
]

POSTGRES_CREATE = [
    """CREATE OR REPLACE FUNCTION qm_journal_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'journal entries and lines are append-only'; END
       $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION qm_journal_entry_balances() RETURNS trigger AS $$
       DECLARE
         target uuid;
         claimed record;
         found_lines bigint;
         debits numeric;
         credits numeric;
       BEGIN
         IF TG_TABLE_NAME = 'journal_line' THEN target := NEW.entry_id; ELSE target := NEW.id; END IF;
         SELECT line_count, debit_total_minor, credit_total_minor INTO claimed
           FROM journal_entry WHERE id = target;
         IF NOT FOUND THEN
           RAISE EXCEPTION USING ERRCODE = 'check_violation',
             MESSAGE = 'journal entry ' || target || ' has lines but no entry row';
         END IF;
         SELECT COUNT(*), COALESCE(SUM(debit_minor), 0), COALESCE(SUM(credit_minor), 0)
           INTO found_lines, debits, credits FROM journal_line WHERE entry_id = target;
         IF found_lines < 2 OR debits <= 0 OR debits <> credits
            OR found_lines <> claimed.line_count OR debits <> claimed.debit_total_minor
            OR credits <> claimed.credit_total_minor THEN
           RAISE EXCEPTION USING ERRCODE = 'check_violation',
             MESSAGE = 'journal entry ' || target || ' does not balance or its lines differ';
         END IF;
         RETURN NULL;
       END
       $$ LANGUAGE plpgsql""",
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION qm_journal_append_only()"""
        for table in (ENTRY, LINE)
    ),
    *(
        f"""CREATE CONSTRAINT TRIGGER {table}_balanced_at_commit AFTER INSERT ON {table}
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION qm_journal_entry_balances()"""
        for table in (ENTRY, LINE)
    ),
]
POSTGRES_DROP = [
    *(f"DROP TRIGGER IF EXISTS {table}_balanced_at_commit ON {table}" for table in (ENTRY, LINE)),
    *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in (ENTRY, LINE)),
    "DROP FUNCTION IF EXISTS qm_journal_entry_balances()",
    "DROP FUNCTION IF EXISTS qm_journal_append_only()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("journal", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        ),
    ]
