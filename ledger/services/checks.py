"""The ledger's self-check: the books balance and agree with the payments, refunds and plans.

`ledger_check()` reads everything and writes nothing; `ledger_check_record()` stores its
outcome as a `LedgerCheckRun` (the daily task, shown in admin). What it verifies:

- every entry sums to zero per currency (the database refuses any other at commit: a
  mismatch here means the trigger was bypassed);
- every captured payment (PAID_STATUSES) is posted once, as `payment:<id>`, with its amount
  moved from deferred revenue to its provider's clearing account;
- its refunds took exactly its refunded amount out of clearing;
- what its plan recognised, what is still deferred and the unearned part of its refunds add
  up to its amount, and the revenue and deferred revenue posted for it are the plan's;
- no entry is an orphan: without postings, or about a payment that never took money;
- the day totals the reports read add up, per account, to its postings.

Payments are read in batches of `BATCH` by primary key, so memory stays flat at any size.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Sum
from django.utils.translation import gettext_lazy as _

from ledger import accounts_chart as chart
from ledger.models import (
    DayTotal,
    EntryKind,
    JournalEntry,
    LedgerAccount,
    LedgerCheckRun,
    Posting,
    RecognitionPlan,
)
from payments.models import PAID_STATUSES, Payment, Refund
from payments.services.unhomed import UNHOMED_COMMENT

BATCH = 2000
# A run keeps this many mismatches in full (the JSON and the stored run); it counts them all.
MISMATCHES_KEPT = 1000
# Entries that record something about one payment: they must name a payment that took money.
PAYMENT_KINDS = (EntryKind.PAYMENT_CAPTURED, EntryKind.REFUND, EntryKind.REVENUE_RECOGNIZED)

# What each check means, for people (the command's text output, admin).
CHECK_LABELS = {
    "entry_unbalanced": _("entry does not balance"),
    "entry_without_postings": _("entry without postings"),
    "entry_without_payment": _("payment entry that names no payment"),
    "entry_for_unpaid_payment": _("entry for a payment that took no money"),
    "capture_missing": _("captured payment not posted"),
    "capture_duplicated": _("captured payment posted more than once"),
    "capture_amount": _("captured payment posted with another amount"),
    "refund_amount": _("refunded amount not posted as refunded"),
    "plan_missing": _("paid payment without a recognition plan"),
    "plan_orphan": _("recognition plan of a payment that took no money"),
    "plan_total": _("recognised + deferred + unearned refunds differ from the amount"),
    "plan_deferred": _("deferred revenue posted differs from the plan"),
    "plan_recognized": _("revenue posted differs from the plan"),
    "foreign_posting": _("payment posted to an account or currency not its own"),
    "day_totals": _("the reports' day totals differ from the postings"),
}


@dataclass(frozen=True)
class Mismatch:
    """One thing the books and the payments disagree on."""

    check: str
    subject: str  # the payment ("payment:<id>") or the entry ("entry:<id> <source>") it is about
    expected: int | str | None = None
    found: int | str | None = None
    currency: str = ""

    @property
    def label(self) -> str:
        return str(CHECK_LABELS.get(self.check, self.check))

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "currency": self.currency,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass
class LedgerCheck:
    """What one check found. `mismatches` holds the first MISMATCHES_KEPT of `mismatch_count`."""

    entries: int = 0
    unbalanced_entries: int = 0
    mismatch_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    # {currency: {account code: minor units, debit +}}
    balances: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        """Return whether every entry, and so every currency's accounts, sums to zero."""
        return self.unbalanced_entries == 0 and all(
            sum(codes.values()) == 0 for codes in self.balances.values()
        )

    @property
    def clean(self) -> bool:
        return self.balanced and self.mismatch_count == 0

    def add(self, mismatch: Mismatch) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < MISMATCHES_KEPT:
            self.mismatches.append(mismatch)

    def as_json(self) -> dict[str, Any]:
        """Return the one object `ledger_check --json` prints."""
        return {
            "balanced": self.balanced,
            "entries": self.entries,
            "unbalanced_entries": self.unbalanced_entries,
            "mismatches": [mismatch.as_json() for mismatch in self.mismatches],
            "balances": self.balances,
        }


def ledger_check() -> LedgerCheck:
    """Return whether the books balance and agree with every payment, refund and plan."""
    result = LedgerCheck(entries=JournalEntry.objects.count(), balances=_balances())
    _check_entries(result)
    _check_day_totals(result)
    for batch in _paid_payment_batches():
        _check_payments(result, batch)
    _check_plans_of_unpaid(result)
    return result


def ledger_check_record() -> LedgerCheckRun:
    """Run the check and store what it found (the daily task; admin shows the runs)."""
    result = ledger_check()
    return LedgerCheckRun.objects.create(
        balanced=result.balanced,
        entries=result.entries,
        unbalanced_entries=result.unbalanced_entries,
        mismatch_count=result.mismatch_count,
        mismatches=[mismatch.as_json() for mismatch in result.mismatches],
        balances=result.balances,
    )


def _balances() -> dict[str, dict[str, int]]:
    balances: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (
        Posting.objects.values("currency", "account__code")
        .annotate(total=Sum("amount"))
        .order_by("currency", "account__code")
    )
    for row in rows:
        balances[row["currency"]][row["account__code"]] = int(row["total"])
    return dict(balances)


def _check_day_totals(result: LedgerCheck) -> None:
    """Compare each account's day totals (what the reports read) with its postings.

    One statement reads both, so a posting committed while the check runs cannot make them
    look different.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.currency, a.code, SUM(both_sides.posted), SUM(both_sides.totalled)
            FROM (
                SELECT account_id, amount AS posted, 0 AS totalled FROM {Posting._meta.db_table}
                UNION ALL
                SELECT account_id, 0, amount FROM {DayTotal._meta.db_table}
            ) AS both_sides
            JOIN {LedgerAccount._meta.db_table} a ON a.id = both_sides.account_id
            GROUP BY a.currency, a.code
            HAVING SUM(both_sides.posted) <> SUM(both_sides.totalled)
            ORDER BY a.currency, a.code
            """  # noqa: S608 - the table names are the models'
        )
        for currency, code, posted, totalled in cursor.fetchall():
            result.add(
                Mismatch(
                    "day_totals",
                    f"account:{code}",
                    expected=int(posted),
                    found=int(totalled),
                    currency=currency,
                )
            )


def _entry_subject(entry_id: int, source: str) -> str:
    return f"entry:{entry_id} {source}"


def _check_entries(result: LedgerCheck) -> None:
    """Find unbalanced entries and orphans (no postings, no payment, a payment that took no money)."""
    # Summed without a join over every posting; the few sources are read afterwards.
    unbalanced = (
        Posting.objects.values("entry_id", "currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("entry_id")
    )
    rows = list(unbalanced.iterator(chunk_size=BATCH))
    unbalanced_ids = {row["entry_id"] for row in rows}
    sources = dict(
        JournalEntry.objects.filter(pk__in=[row["entry_id"] for row in rows[:MISMATCHES_KEPT]]).values_list(
            "pk", "source"
        )
    )
    for row in rows:
        result.add(
            Mismatch(
                "entry_unbalanced",
                _entry_subject(row["entry_id"], sources.get(row["entry_id"], "")),
                expected=0,
                found=int(row["total"]),
                currency=row["currency"],
            )
        )
    result.unbalanced_entries = len(unbalanced_ids)
    orphans = [
        (
            "entry_without_postings",
            JournalEntry.objects.filter(~Exists(Posting.objects.filter(entry=OuterRef("pk")))),
        ),
        ("entry_without_payment", JournalEntry.objects.filter(payment__isnull=True, kind__in=PAYMENT_KINDS)),
        (
            "entry_for_unpaid_payment",
            JournalEntry.objects.filter(payment__isnull=False).exclude(payment__status__in=PAID_STATUSES),
        ),
    ]
    for check, entries in orphans:
        for entry_id, source in entries.order_by("pk").values_list("pk", "source").iterator(chunk_size=BATCH):
            result.add(Mismatch(check, _entry_subject(entry_id, source)))


def _paid_payment_batches() -> Iterator[list[dict[str, Any]]]:
    """Yield the paid payments, BATCH at a time, in primary key order (keyset paging)."""
    paid = Payment.objects.filter(status__in=PAID_STATUSES).order_by("pk")
    columns = ("pk", "amount", "currency", "provider", "refunded_amount")
    last = None
    while True:
        page = paid if last is None else paid.filter(pk__gt=last)
        batch = list(page.values(*columns)[:BATCH])
        if not batch:
            return
        yield batch
        last = batch[-1]["pk"]


@dataclass
class _Posted:
    """What the entries of one payment posted: per (kind, account code, currency), and its captures."""

    totals: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    captures: list[str] = field(default_factory=list)

    def total(self, *, code: str, currency: str, kinds: tuple[str, ...] | None = None) -> int:
        return sum(
            amount
            for (kind, account, in_currency), amount in self.totals.items()
            if account == code and in_currency == currency and (kinds is None or kind in kinds)
        )


def _within(field: str, span: tuple[Any, Any]) -> dict[str, Any]:
    """Return the filter of rows whose `field` (a payment) lies in [first, last] by id."""
    return {f"{field}__gte": span[0], f"{field}__lte": span[1]}


def _posted_for(span: tuple[Any, Any]) -> dict[Any, _Posted]:
    posted: dict[Any, _Posted] = defaultdict(_Posted)
    rows = (
        Posting.objects.filter(**_within("entry__payment", span))
        .values("entry__payment_id", "entry__kind", "account__code", "currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in rows:
        key = (row["entry__kind"], row["account__code"], row["currency"])
        posted[row["entry__payment_id"]].totals[key] += int(row["total"])
    captures = (
        JournalEntry.objects.filter(**_within("payment", span), kind=EntryKind.PAYMENT_CAPTURED)
        .values_list("payment_id", "source")
        .order_by("pk")
    )
    for payment_id, source in captures:
        posted[payment_id].captures.append(source)
    return posted


def _check_payments(result: LedgerCheck, batch: list[dict[str, Any]]) -> None:
    """Compare one batch of paid payments with what their entries posted and their plans say."""
    # The batch's first and last ids, rather than a list of them: a range is cheaper to send and
    # to scan. Payments in it that took no money are left out below (the orphan checks see them).
    span = (batch[0]["pk"], batch[-1]["pk"])
    posted = _posted_for(span)
    plans = {
        plan["payment_id"]: plan
        for plan in RecognitionPlan.objects.filter(**_within("payment", span)).values(
            "payment_id", "recognized", "deferred"
        )
    }
    # A charge refunded at once for lack of a home paid for no period: it has no plan to earn.
    unhomed = set(
        Refund.objects.filter(**_within("payment", span), comment=UNHOMED_COMMENT, created_by__isnull=True)
        .values_list("payment_id", flat=True)
        .distinct()
    )
    for payment in batch:
        _check_payment(
            result, payment, posted[payment["pk"]], plans.get(payment["pk"]), payment["pk"] in unhomed
        )


@dataclass(frozen=True)
class _Paid:
    """One paid payment as the checks compare it, with what was posted for it."""

    result: LedgerCheck
    row: dict[str, Any]
    posted: _Posted

    @property
    def currency(self) -> str:
        return str(self.row["currency"])

    @property
    def amount(self) -> int:
        return int(self.row["amount"])

    @property
    def clearing(self) -> str:
        return chart.provider_clearing(self.row["provider"])

    def total(self, code: str, *kinds: str) -> int:
        return self.posted.total(code=code, currency=self.currency, kinds=kinds or None)

    def report(self, check: str, expected: int | str | None, found: int | str | None) -> None:
        subject = f"payment:{self.row['pk']}"
        self.result.add(Mismatch(check, subject, expected=expected, found=found, currency=self.currency))


def _check_payment(
    result: LedgerCheck,
    payment: dict[str, Any],
    posted: _Posted,
    plan: Mapping[str, Any] | None,
    unhomed: bool,
) -> None:
    paid = _Paid(result, payment, posted)
    _check_capture(paid)
    _check_refunds(paid)
    _check_plan(paid, plan, unhomed)


def _check_capture(paid: _Paid) -> None:
    """Posted once, as payment:<id>, moving its amount from deferred revenue to its clearing."""
    captures, amount, currency = paid.posted.captures, paid.amount, paid.currency
    if not captures:
        paid.report("capture_missing", amount, 0)
    elif len(captures) > 1:
        paid.report("capture_duplicated", 1, len(captures))
    elif captures[0] != f"payment:{paid.row['pk']}":
        paid.report("capture_missing", f"payment:{paid.row['pk']}", captures[0])
    else:
        captured = {
            (code, in_currency): total
            for (kind, code, in_currency), total in paid.posted.totals.items()
            if kind == EntryKind.PAYMENT_CAPTURED and total
        }
        if captured != {(paid.clearing, currency): amount, (chart.DEFERRED_REVENUE, currency): -amount}:
            paid.report("capture_amount", amount, paid.total(paid.clearing, EntryKind.PAYMENT_CAPTURED))


def _check_refunds(paid: _Paid) -> None:
    """Its refunds (and any reversal of them) took exactly its refunded amount out of clearing.

    And nothing else was posted for it: a payment's accounts are its provider's clearing,
    deferred revenue, revenue and refunds, in its currency.
    """
    taken = paid.total(paid.clearing, EntryKind.PAYMENT_CAPTURED) - paid.total(paid.clearing)
    if taken != paid.row["refunded_amount"]:
        paid.report("refund_amount", paid.row["refunded_amount"], taken)
    own = {paid.clearing, chart.DEFERRED_REVENUE, chart.REVENUE, chart.REFUNDS}
    foreign = sorted(
        {
            f"{code} {in_currency}"
            for (_, code, in_currency), total in paid.posted.totals.items()
            if total and (code not in own or in_currency != paid.currency)
        }
    )
    if foreign:
        paid.report("foreign_posting", None, ", ".join(foreign))


def _check_plan(paid: _Paid, plan: Mapping[str, Any] | None, unhomed: bool) -> None:
    """Recognised + deferred + the unearned part of its refunds = its amount, as posted.

    A charge refunded at once for lack of a home may have no plan: it earns nothing.
    """
    unearned = paid.total(chart.DEFERRED_REVENUE, EntryKind.REFUND)
    if plan is None:
        if not unhomed:
            paid.report("plan_missing", paid.amount, None)
            return
        plan = {"recognized": 0, "deferred": paid.amount - unearned}
    recognized, deferred = plan["recognized"], plan["deferred"]
    if recognized + deferred + unearned != paid.amount:
        paid.report("plan_total", paid.amount, recognized + deferred + unearned)
    if -paid.total(chart.DEFERRED_REVENUE) != deferred:
        paid.report("plan_deferred", deferred, -paid.total(chart.DEFERRED_REVENUE))
    if -paid.total(chart.REVENUE) != recognized:
        paid.report("plan_recognized", recognized, -paid.total(chart.REVENUE))


def _check_plans_of_unpaid(result: LedgerCheck) -> None:
    plans = RecognitionPlan.objects.exclude(payment__status__in=PAID_STATUSES).order_by("payment_id")
    for payment_id in plans.values_list("payment_id", flat=True).iterator(chunk_size=BATCH):
        result.add(Mismatch("plan_orphan", f"payment:{payment_id}"))
