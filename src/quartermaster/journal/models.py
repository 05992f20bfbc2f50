"""The one double-entry journal: accounts, entries and their lines, and account balances.

Entries and lines are a ledger: written once, never edited or deleted (database triggers refuse
both; a correction is a reversing entry). An entry carries its line count and totals and is
written after its lines, so the database can check, when the entry row arrives, that the lines
already there are the ones it claims and that they balance (see migrations/0002).
`AccountBalance` is a projection of the lines, kept in the posting transaction and checkable
against them at any time (`quartermaster journal verify`).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q

from quartermaster.journal.invariants import AccountKind


class Account(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=AccountKind.choices)
    opened_at = models.DateTimeField()


class AccountBalance(models.Model):
    """Totals of every line posted to an account; balance = debits - credits."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    debit_total_minor = models.BigIntegerField(default=0)
    credit_total_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(debit_total_minor__gte=0, credit_total_minor__gte=0),
                name="journal_balance_totals_not_negative",
            ),
        ]


class Entry(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The entry's place in the series (number `JE-000042` is seq 42): gap-free, in commit
    # order, and what lists are ordered by (the number's text sorts wrongly past a million).
    seq = models.BigIntegerField(unique=True)
    number = models.CharField(max_length=20, unique=True)
    posted_at = models.DateTimeField()
    memo = models.CharField(max_length=500, blank=True, default="")
    # The command that posted it and who ran it.
    action = models.CharField(max_length=100)
    posted_by = models.CharField(max_length=150)
    # What the money is about, in the posting domain's terms (`settlement`, its id).
    source_type = models.CharField(max_length=50, blank=True, default="")
    source_id = models.CharField(max_length=100, blank=True, default="")
    # An entry is reversed at most once: the reversal's `reverses` is unique.
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    # What the lines must add up to: checked against them by the database when this row is
    # written (SQLite) or at commit (PostgreSQL).
    line_count = models.PositiveIntegerField()
    debit_total_minor = models.BigIntegerField()
    credit_total_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(line_count__gte=2), name="journal_entry_two_lines"),
            models.CheckConstraint(
                condition=Q(debit_total_minor__gt=0, debit_total_minor=F("credit_total_minor")),
                name="journal_entry_balances",
            ),
        ]
        indexes = [models.Index(fields=["source_type", "source_id"], name="journal_entry_source")]


class Line(models.Model):
    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    debit_minor = models.BigIntegerField()
    credit_minor = models.BigIntegerField()
    memo = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entry", "line_no"], name="journal_line_unique"),
            models.CheckConstraint(
                condition=Q(debit_minor__gt=0, credit_minor=0)
                | Q(debit_minor=0, credit_minor__gt=0),
                name="journal_line_one_side",
            ),
        ]
        indexes = [models.Index(fields=["account", "entry"], name="journal_line_account")]
