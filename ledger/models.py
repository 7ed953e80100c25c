"""The books: accounts per currency, journal entries, and their postings in minor units.

Append-only: entries and postings are never updated or deleted (a correction is a reversing
entry), and every entry sums to zero per currency. PostgreSQL holds both rules itself
(triggers in migration 0002), whatever code writes; the posting service checks them too.
"""

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.fields import CreatedAtField, UpdatedAtField
from core.money import CURRENCY_CODE_REGEX


class LedgerAccount(models.Model):
    """One account of the chart (ledger/accounts_chart.py) in one currency."""

    code = models.CharField(_("code"), max_length=64)
    currency = models.CharField(_("currency"), max_length=3)

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        ordering = ["currency", "code"]
        constraints = [
            models.UniqueConstraint(fields=["code", "currency"], name="ledger_account_code_currency_unique"),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX), name="ledger_account_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.currency})"


class EntryKind(models.TextChoices):
    PAYMENT_CAPTURED = "payment_captured", _("payment captured")
    REFUND = "refund", _("refund")
    REVENUE_RECOGNIZED = "revenue_recognized", _("revenue recognised")
    PROVIDER_FEE = "provider_fee", _("provider fee")
    PAYOUT = "payout", _("payout")
    REVERSAL = "reversal", _("reversal")


class JournalEntry(models.Model):
    """One business event in the books: its postings sum to zero per currency.

    `source` says what it records ("payment:<id>", "recognition:<payment id>:<day>", ...) and
    is unique, so a replayed webhook or a job run twice posts nothing twice.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(_("kind"), max_length=32, choices=EntryKind.choices)
    source = models.CharField(_("source"), max_length=200, unique=True)
    # When it happened in the books (the payment's capture, the refund, the recognised day).
    effective_at = models.DateTimeField(_("effective at"), db_index=True)
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("payment"),
    )
    memo = models.CharField(_("memo"), max_length=255, blank=True)
    created_at = CreatedAtField(_("recorded"))

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        ordering = ["-effective_at", "-id"]
        # Accounting's: the reports pages (ledger/admin/reports.py) and the entries' exports.
        permissions = [
            ("view_ledger_reports", "Can view the ledger's reports"),
            ("export_journalentry", "Can export journal entries"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EntryKind.values), name="journal_entry_kind_valid"),
        ]
        indexes = [models.Index(fields=["payment", "kind"], name="journal_entry_payment_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.source}"


class Posting(models.Model):
    """One line of an entry: a signed amount (debit +, credit -) on one account."""

    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="postings", verbose_name=_("entry")
    )
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="postings", verbose_name=_("account")
    )
    amount = models.BigIntegerField(_("amount (minor units, debit +)"))
    # The account's, repeated so that the balance trigger sums per currency without a join.
    currency = models.CharField(_("currency"), max_length=3)
    # The entry's, repeated so that balances at a date read postings alone.
    effective_at = models.DateTimeField(_("effective at"))

    class Meta:
        verbose_name = _("posting")
        verbose_name_plural = _("postings")
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_not_zero"),
        ]
        indexes = [
            models.Index(fields=["account", "effective_at"], name="posting_account_time_idx"),
            models.Index(fields=["entry"], name="posting_entry_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.amount:+d}"


class DayTotal(models.Model):
    """What one UTC day's postings of one kind of entry add up to on one account.

    The reports sum these instead of every posting: a few rows per account and day, however
    many renewals the day had. The database writes them (a trigger on every posting insert,
    migration 0005), so no writer can forget; several rows may hold the same (account, day,
    kind) until `day_totals_compact` merges them, and they simply add up. Derived data: it can
    be rebuilt from the postings at any time, which `ledger_check` compares it with.
    """

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="+", verbose_name=_("account")
    )
    currency = models.CharField(_("currency"), max_length=3)
    day = models.DateField(_("day (UTC)"))
    kind = models.CharField(_("entry kind"), max_length=32, choices=EntryKind.choices)
    amount = models.BigIntegerField(_("amount (minor units, debit +)"))

    class Meta:
        verbose_name = _("day total")
        verbose_name_plural = _("day totals")
        indexes = [models.Index(fields=["day", "account"], name="ledger_day_total_day_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day} {self.kind} {self.amount:+d}"


class RecognitionPlan(models.Model):
    """How one paid period's money moves from deferred revenue to revenue, day by day.

    The line followed now spreads `base_amount` evenly over the UTC days [`start_day`,
    `end_day`) on top of `base_recognized`: through day D, `base_recognized +
    floor(base_amount * days elapsed / days)` is recognised. A refund or a goodwill extension
    draws a new line from the first day not yet recognised, with what is still deferred.
    `recognized`/`recognized_through` say where the daily job stands; `deferred` is what is
    still owed (the amount less what was recognised and the unearned part of refunds).
    """

    payment = models.OneToOneField(
        "payments.Payment",
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="+",
        verbose_name=_("payment"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    start_day = models.DateField(_("line starts"))
    end_day = models.DateField(_("line ends (exclusive)"))
    base_recognized = models.BigIntegerField(_("recognised before the line"), default=0)
    base_amount = models.BigIntegerField(_("spread over the line"))
    recognized = models.BigIntegerField(_("recognised"), default=0)
    recognized_through = models.DateField(_("recognised through"), null=True, blank=True)
    deferred = models.BigIntegerField(_("still deferred"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("revenue recognition plan")
        verbose_name_plural = _("revenue recognition plans")
        constraints = [
            models.CheckConstraint(
                condition=Q(end_day__gt=F("start_day")), name="recognition_line_not_empty"
            ),
            models.CheckConstraint(condition=Q(deferred__gte=0), name="recognition_deferred_not_negative"),
            models.CheckConstraint(
                condition=Q(recognized__gte=0), name="recognition_recognized_not_negative"
            ),
        ]
        indexes = [
            # The daily job reads the plans with money still deferred.
            models.Index(fields=["start_day"], condition=Q(deferred__gt=0), name="recognition_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.recognized} recognised, {self.deferred} deferred"


class LedgerCheckRun(models.Model):
    """One run of `ledger_check`: whether the books balance and agree with payments and refunds.

    The daily task stores one; admin shows them to Accounting and Support. `mismatches` is
    capped (see ledger/services/checks.py); `mismatch_count` counts them all.
    """

    checked_at = CreatedAtField(_("checked"), db_index=True)
    balanced = models.BooleanField(_("balanced"))
    entries = models.PositiveBigIntegerField(_("entries"))
    unbalanced_entries = models.PositiveBigIntegerField(_("unbalanced entries"))
    mismatch_count = models.PositiveBigIntegerField(_("mismatches"))
    # [{"check", "subject", "currency", "expected", "found"}], as `ledger_check --json` prints them.
    mismatches = models.JSONField(_("what disagrees"), default=list, blank=True)
    # {currency: {account code: minor units, debit +}}
    balances = models.JSONField(_("balances"), default=dict, blank=True)

    class Meta:
        verbose_name = _("ledger check")
        verbose_name_plural = _("ledger checks")
        ordering = ["-checked_at"]

    def __str__(self) -> str:
        return f"{self.checked_at:%Y-%m-%d %H:%M} · {self.mismatch_count}"

    @property
    def is_clean(self) -> bool:
        return self.balanced and self.mismatch_count == 0
