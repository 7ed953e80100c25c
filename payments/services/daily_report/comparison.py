"""The reconciliation report's comparison: our money of a range of UTC days against Stripe's ledger.

Our side is the payments Stripe captured (succeeded, partially refunded or refunded) paid in the
range, and the refunds that succeeded with us in it (`succeeded_at`). Stripe's side is the
charges, refunds and balance transactions created in the range, read through the gateway. Each
pair is matched by Stripe id and every difference is listed; nothing is changed on either side.

Both sides are also read an hour either side of the range (`BOUNDARY_MARGIN`), so that a
payment paid at 23:59:59 with us and charged at 00:00:01 at Stripe is reported as dated
another day instead of as missing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.days import utc_day_range, utc_midnight
from core.money import format_money
from payments.gateways import get_gateway
from payments.gateways.base import ChargeInfo, CreatedRange, RefundInfo, SettlementLine
from payments.models import PAID_STATUSES, Payment, Refund, RefundStatus
from payments.services.daily_report.days import reconciliation_range_check
from payments.services.daily_report.shapes import (
    AMOUNT_DIFFERS,
    BALANCE_TRANSACTION_DIFFERS,
    BALANCE_TRANSACTION_MISSING,
    CURRENCY_DIFFERS,
    MISSING_AT_STRIPE,
    MISSING_WITH_US,
    OTHER_DAY,
    PAYMENT,
    REFUND,
    REFUNDED_DIFFERS,
    STATUS_DIFFERS,
    CurrencyTotals,
    Mismatch,
    ReconciliationReport,
)
from payments.services.reconciliation import unbooked_charges_fixed

BOUNDARY_MARGIN = timedelta(hours=1)
# Payments whose money Stripe took: refunds later change their status, not that fact.
# Stripe refunds that move (or are moving) money back; failed and canceled ones never did.
STRIPE_REFUND_ISSUED = ("succeeded", "pending", "requires_action")


def reconciliation_report(*, date_from: date, date_to: date) -> ReconciliationReport:
    """Compare our captured payments and succeeded refunds of a range of UTC days with Stripe's.

    List every difference and the totals of the whole range per currency. Raise
    ReportRangeError for a range the report is not made for, and GatewayError when Stripe
    cannot be read: a report on half a ledger would be wrong.
    """
    reconciliation_range_check(date_from=date_from, date_to=date_to)
    start, end = utc_midnight(date_from), utc_day_range(date_to)[1]
    wide = CreatedRange(start=start - BOUNDARY_MARGIN, end=end + BOUNDARY_MARGIN)
    gateway = get_gateway()
    charges = gateway.list_charges(wide)
    stripe_refunds = gateway.list_refunds(wide)
    transactions = gateway.list_settlement_lines(wide)

    day_ = _Day(start=start, end=end, wide=wide, ledger=_Ledger(transactions))
    report = ReconciliationReport(date_from=date_from, date_to=date_to)
    report.mismatches.extend(_compare_payments(day_, charges))
    _move_fixed_charges(report, [c.id for c in charges if day_.holds(c.created)], since=start)
    report.mismatches.extend(_compare_refunds(day_, stripe_refunds))
    for txn in transactions:
        if txn.kind != "other" and day_.holds(txn.created):  # payouts and the like are not sales
            row = day_.totals_of(txn.currency)
            row.stripe_fees += txn.fee
            row.stripe_net += txn.net
    report.totals = [day_.totals[code] for code in sorted(day_.totals)]
    return report


def reconciliation_report_for_day(*, day: date) -> ReconciliationReport:
    """Compare our captured payments and succeeded refunds of one UTC day with Stripe's."""
    return reconciliation_report(date_from=day, date_to=day)


def _move_fixed_charges(report: ReconciliationReport, charge_ids: list[str], *, since: datetime) -> None:
    """List the day's charges the unbooked-charges job settled as fixes, not as mismatches."""
    fixed = unbooked_charges_fixed(charge_ids=charge_ids, since=since) if charge_ids else {}
    if not fixed:
        return
    report.mismatches = [
        m for m in report.mismatches if not (m.object_type == PAYMENT and m.stripe_id in fixed)
    ]
    report.fixed = [
        {**fix, "money": format_money(int(fix.get("amount") or 0), str(fix.get("currency") or ""))}
        for fix in fixed.values()
    ]


class _Ledger:
    """Stripe's balance transactions of the window, found by id or by the object they record."""

    def __init__(self, transactions: Iterable[SettlementLine]) -> None:
        self.by_id = {txn.id: txn for txn in transactions}
        self.by_source = {txn.source_id: txn for txn in self.by_id.values() if txn.source_id}

    def of(self, transaction_id: str | None, source_id: str) -> SettlementLine | None:
        if transaction_id and transaction_id in self.by_id:
            return self.by_id[transaction_id]
        return self.by_source.get(source_id)


@dataclass(slots=True)
class _Day:
    """The days being reported on, their reading window, Stripe's ledger and the totals so far."""

    start: datetime
    end: datetime
    wide: CreatedRange
    ledger: _Ledger
    totals: dict[str, CurrencyTotals] = field(default_factory=dict)

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def totals_of(self, currency: str) -> CurrencyTotals:
        return self.totals.setdefault(currency, CurrencyTotals(currency=currency))


def _compare_payments(day: _Day, charges: list[ChargeInfo]) -> list[Mismatch]:
    by_id: dict[str, ChargeInfo] = {charge.id: charge for charge in charges}
    # A PaymentIntent may hold declined charges before the one that succeeded: prefer that one.
    by_intent: dict[str, ChargeInfo] = {}
    for listed in sorted(charges, key=lambda c: c.status == "succeeded"):
        if listed.payment_intent_id:
            by_intent[listed.payment_intent_id] = listed

    fields = (
        "id",
        "amount",
        "currency",
        "status",
        "refunded_amount",
        "paid_at",
        "provider_charge_id",
        "provider_payment_id",
    )
    ours = list(
        Payment.objects.filter(
            status__in=PAID_STATUSES, paid_at__gte=day.wide.start, paid_at__lt=day.wide.end
        )
        .only(*fields)
        .order_by("paid_at", "id")
    )
    pairs: list[tuple[Payment | None, ChargeInfo | None]] = []
    matched: set[str] = set()
    for mine in ours:
        match = by_id.get(mine.provider_charge_id or "") or by_intent.get(mine.provider_payment_id or "")
        if match is not None:
            matched.add(match.id)
        pairs.append((mine, match))
    # Stripe's captured charges of the day we did not find among our captured payments of the
    # window: look for their payment whatever its status or date, in one query.
    unmatched = [
        c for c in charges if c.status == "succeeded" and day.holds(c.created) and c.id not in matched
    ]
    if unmatched:
        known = Payment.objects.filter(
            Q(provider_charge_id__in=[c.id for c in unmatched])
            | Q(provider_payment_id__in=[c.payment_intent_id for c in unmatched if c.payment_intent_id])
        ).only(*fields)
        by_charge = {p.provider_charge_id: p for p in known if p.provider_charge_id}
        by_pi = {p.provider_payment_id: p for p in known if p.provider_payment_id}
        for stray in unmatched:
            pairs.append((by_charge.get(stray.id) or by_pi.get(stray.payment_intent_id or ""), stray))

    found: list[Mismatch] = []
    for payment, charge in pairs:
        captured = payment is not None and payment.status in PAID_STATUSES
        ours_in_day = payment is not None and captured and day.holds(payment.paid_at)
        stripe_in_day = charge is not None and charge.status == "succeeded" and day.holds(charge.created)
        if ours_in_day and payment is not None:
            row = day.totals_of(payment.currency)
            row.our_payments += 1
            row.our_gross += payment.amount
        if stripe_in_day and charge is not None:
            row = day.totals_of(charge.currency)
            row.stripe_charges += 1
            row.stripe_gross += charge.amount
        if not (ours_in_day or stripe_in_day):
            continue
        found.extend(_payment_mismatches(payment, charge, day.ledger, ours_in_day, stripe_in_day))
    return found


def _payment_mismatches(
    payment: Payment | None,
    charge: ChargeInfo | None,
    ledger: _Ledger,
    ours_in_day: bool,
    stripe_in_day: bool,
) -> list[Mismatch]:
    our_id = str(payment.pk) if payment is not None else None
    if charge is None:
        if payment is None:
            return []
        return [
            Mismatch(
                MISSING_AT_STRIPE,
                PAYMENT,
                our_id,
                payment.provider_charge_id or payment.provider_payment_id,
                ours=_payment_money(payment),
                stripe=str(_("no charge that day")),
            )
        ]
    found: list[Mismatch] = []

    def add(kind: str, ours: str, stripe: str) -> None:
        found.append(Mismatch(kind, PAYMENT, our_id, charge.id, ours=ours, stripe=stripe))

    if payment is None:
        add(MISSING_WITH_US, str(_("no payment")), format_money(charge.amount, charge.currency))
        return found
    if payment.status not in PAID_STATUSES or charge.status != "succeeded":
        add(STATUS_DIFFERS, payment.get_status_display(), charge.status)
    elif ours_in_day != stripe_in_day:
        add(OTHER_DAY, _moment(payment.paid_at), _moment(charge.created))
    agree = payment.currency == charge.currency and payment.amount == charge.amount
    if payment.currency != charge.currency:
        add(CURRENCY_DIFFERS, payment.currency, charge.currency)
    elif payment.amount != charge.amount:
        add(AMOUNT_DIFFERS, _payment_money(payment), format_money(charge.amount, charge.currency))
    elif payment.refunded_amount != charge.amount_refunded:
        add(
            REFUNDED_DIFFERS,
            format_money(payment.refunded_amount, payment.currency),
            format_money(charge.amount_refunded, charge.currency),
        )
    if charge.status == "succeeded":
        txn = ledger.of(charge.balance_transaction_id, charge.id)
        if txn is None:
            add(BALANCE_TRANSACTION_MISSING, _payment_money(payment), charge.balance_transaction_id or "-")
        # Held against our amount (when Stripe's charge agrees with it, else that is the one
        # mismatch to show). A balance in another currency holds the converted amount: there
        # is nothing to compare it with.
        elif agree and txn.currency == payment.currency and txn.amount != payment.amount:
            add(
                BALANCE_TRANSACTION_DIFFERS,
                _payment_money(payment),
                f"{txn.id}: {format_money(txn.amount, txn.currency)}",
            )
    return found


def _compare_refunds(day: _Day, stripe_refunds: list[RefundInfo]) -> list[Mismatch]:
    by_id: dict[str, RefundInfo] = {refund.id: refund for refund in stripe_refunds}
    ours = list(
        Refund.objects.filter(
            status=RefundStatus.SUCCEEDED, succeeded_at__gte=day.wide.start, succeeded_at__lt=day.wide.end
        )
        .only("id", "amount", "currency", "status", "succeeded_at", "provider_refund_id")
        .order_by("succeeded_at", "id")
    )
    pairs: list[tuple[Refund | None, RefundInfo | None]] = []
    matched: set[str] = set()
    for mine in ours:
        match = by_id.get(mine.provider_refund_id or "")
        if match is not None:
            matched.add(match.id)
        pairs.append((mine, match))
    unmatched = [
        r
        for r in stripe_refunds
        if r.status in STRIPE_REFUND_ISSUED and day.holds(r.created) and r.id not in matched
    ]
    if unmatched:
        known = {
            r.provider_refund_id: r
            for r in Refund.objects.filter(provider_refund_id__in=[r.id for r in unmatched]).only(
                "id", "amount", "currency", "status", "succeeded_at", "provider_refund_id"
            )
        }
        pairs.extend((known.get(theirs.id), theirs) for theirs in unmatched)

    found: list[Mismatch] = []
    for refund, theirs in pairs:
        ours_in_day = (
            refund is not None and refund.status == RefundStatus.SUCCEEDED and day.holds(refund.succeeded_at)
        )
        stripe_in_day = (
            theirs is not None and theirs.status in STRIPE_REFUND_ISSUED and day.holds(theirs.created)
        )
        if ours_in_day and refund is not None:
            day.totals_of(refund.currency).our_refunds += refund.amount
        if stripe_in_day and theirs is not None:
            day.totals_of(theirs.currency).stripe_refunds += theirs.amount
        if not (ours_in_day or stripe_in_day):
            continue
        found.extend(_refund_mismatches(refund, theirs, day.ledger, ours_in_day, stripe_in_day))
    return found


def _refund_mismatches(
    refund: Refund | None,
    theirs: RefundInfo | None,
    ledger: _Ledger,
    ours_in_day: bool,
    stripe_in_day: bool,
) -> list[Mismatch]:
    our_id = str(refund.pk) if refund is not None else None
    if theirs is None:
        if refund is None:
            return []
        return [
            Mismatch(
                MISSING_AT_STRIPE,
                REFUND,
                our_id,
                refund.provider_refund_id,
                ours=format_money(refund.amount, refund.currency),
                stripe=str(_("no refund that day")),
            )
        ]
    found: list[Mismatch] = []

    def add(kind: str, ours: str, stripe: str) -> None:
        found.append(Mismatch(kind, REFUND, our_id, theirs.id, ours=ours, stripe=stripe))

    if refund is None:
        add(MISSING_WITH_US, str(_("no refund")), format_money(theirs.amount, theirs.currency))
        return found
    if refund.status != RefundStatus.SUCCEEDED or theirs.status != "succeeded":
        add(STATUS_DIFFERS, refund.get_status_display(), theirs.status)
    elif ours_in_day != stripe_in_day:
        add(OTHER_DAY, _moment(refund.succeeded_at), _moment(theirs.created))
    agree = refund.currency == theirs.currency and refund.amount == theirs.amount
    if refund.currency != theirs.currency:
        add(CURRENCY_DIFFERS, refund.currency, theirs.currency)
    elif refund.amount != theirs.amount:
        add(
            AMOUNT_DIFFERS,
            format_money(refund.amount, refund.currency),
            format_money(theirs.amount, theirs.currency),
        )
    if theirs.status == "succeeded":
        txn = ledger.of(theirs.balance_transaction_id, theirs.id)
        if txn is None:
            add(
                BALANCE_TRANSACTION_MISSING,
                format_money(refund.amount, refund.currency),
                theirs.balance_transaction_id or "-",
            )
        elif agree and txn.currency == refund.currency and txn.amount != -refund.amount:
            add(
                BALANCE_TRANSACTION_DIFFERS,
                format_money(-refund.amount, refund.currency),
                f"{txn.id}: {format_money(txn.amount, txn.currency)}",
            )
    return found


def _payment_money(payment: Payment) -> str:
    return format_money(payment.amount, payment.currency)


def _moment(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "-"
