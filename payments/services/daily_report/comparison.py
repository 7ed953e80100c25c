"""The reconciliation report's comparison: our money of a range of UTC days against a provider's ledger.

One provider at a time. Our side is that provider's payments whose money it took (succeeded,
partially refunded or refunded) paid in the range, and its refunds that succeeded with us in it
(`succeeded_at`). The provider's side is its charges, refunds and ledger entries created in the
range, read through its gateway. Each pair is matched by the provider's id and every difference
is listed; nothing is changed on either side.

Both sides are also read an hour either side of the range (`BOUNDARY_MARGIN`), so that a
payment paid at 23:59:59 with us and charged at 00:00:01 at the provider is reported as dated
another day instead of as missing twice.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.days import utc_day_range, utc_midnight
from core.money import format_money
from payments.gateways import get_gateway
from payments.gateways.base import ChargeInfo, CreatedRange, RefundInfo
from payments.models import PAID_STATUSES, Payment
from payments.services.daily_report.days import reconciliation_range_check
from payments.services.daily_report.refunds import compare_refunds
from payments.services.daily_report.shapes import (
    AMOUNT_DIFFERS,
    BALANCE_ENTRY_DIFFERS,
    BALANCE_ENTRY_MISSING,
    CURRENCY_DIFFERS,
    MISSING_AT_PROVIDER,
    MISSING_WITH_US,
    OTHER_DAY,
    PAYMENT,
    REFUND,
    REFUNDED_DIFFERS,
    STATUS_DIFFERS,
    Mismatch,
    ReconciliationReport,
)
from payments.services.daily_report.window import Ledger, ReportDays, moment_text
from payments.services.reconciliation import reconciliation_provider, unbooked_charges_fixed

BOUNDARY_MARGIN = timedelta(hours=1)


def reconciliation_report(
    *, date_from: date, date_to: date, provider: str | None = None
) -> ReconciliationReport:
    """Compare our captured payments and succeeded refunds of a range of UTC days with a provider's.

    The provider defaults to the default one; only our rows of that provider are compared. List
    every difference and the totals of the whole range per currency. Raise ReportRangeError for
    a range the report is not made for, and GatewayError when the provider cannot be read: a
    report on half a ledger would be wrong.
    """
    provider = reconciliation_provider(provider)
    reconciliation_range_check(date_from=date_from, date_to=date_to, provider=provider)
    start, end = utc_midnight(date_from), utc_day_range(date_to)[1]
    wide = CreatedRange(start=start - BOUNDARY_MARGIN, end=end + BOUNDARY_MARGIN)
    gateway = get_gateway(provider)
    charges = gateway.list_charges(wide)
    their_refunds = gateway.list_refunds(wide)
    lines = gateway.list_settlement_lines(wide)

    day_ = ReportDays(provider=provider, start=start, end=end, wide=wide, ledger=Ledger(lines))
    report = ReconciliationReport(date_from=date_from, date_to=date_to, provider=provider)
    report.mismatches.extend(_compare_payments(day_, charges))
    _move_fixed_charges(report, [c.id for c in charges if day_.holds(c.created)], since=start)
    report.mismatches.extend(compare_refunds(day_, their_refunds))
    _drop_sweep_refunds(report, their_refunds, since=start - settings.UNBOOKED_CHARGES_LOOKBACK)
    for line in lines:
        # Payouts and the like are not sales.
        if line.kind in ("payment", "refund") and day_.holds(line.created):
            row = day_.totals_of(line.currency)
            row.provider_fees += line.fee
            row.provider_net += line.net
    report.totals = [day_.totals[code] for code in sorted(day_.totals)]
    return report


def reconciliation_report_for_day(*, day: date, provider: str | None = None) -> ReconciliationReport:
    """Compare our captured payments and succeeded refunds of one UTC day with a provider's."""
    return reconciliation_report(date_from=day, date_to=day, provider=provider)


def _move_fixed_charges(report: ReconciliationReport, charge_ids: list[str], *, since: datetime) -> None:
    """List the day's charges the unbooked-charges job settled as fixes, not as mismatches."""
    fixed = (
        unbooked_charges_fixed(provider=report.provider, charge_ids=charge_ids, since=since)
        if charge_ids
        else {}
    )
    if not fixed:
        return
    report.mismatches = [
        m for m in report.mismatches if not (m.object_type == PAYMENT and m.their_id in fixed)
    ]
    report.fixed = [
        {**fix, "money": format_money(int(fix.get("amount") or 0), str(fix.get("currency") or ""))}
        for fix in fixed.values()
    ]


def _drop_sweep_refunds(
    report: ReconciliationReport, their_refunds: list[RefundInfo], *, since: datetime
) -> None:
    """Leave out the refunds the unbooked-charges job gave of charges no row of ours books.

    No refund row of ours stands for them: they are part of that job's fixes, which the report
    lists, not money missing with us. Each names its charge in its metadata (`unbooked_charge`).
    """
    missing = {m.their_id for m in report.mismatches if m.object_type == REFUND and m.kind == MISSING_WITH_US}
    charge_of = {
        refund.id: refund.metadata["unbooked_charge"]
        for refund in their_refunds
        if refund.id in missing and refund.metadata.get("unbooked_charge")
    }
    if not charge_of:
        return
    fixed = unbooked_charges_fixed(
        provider=report.provider, charge_ids=list(set(charge_of.values())), since=since
    )
    refunded = {charge for charge, fix in fixed.items() if str(fix.get("outcome", "")).startswith("refunded")}
    report.mismatches = [
        m
        for m in report.mismatches
        if not (m.object_type == REFUND and charge_of.get(m.their_id or "") in refunded)
    ]


def _compare_payments(day: ReportDays, charges: list[ChargeInfo]) -> list[Mismatch]:
    """Return how our captured payments of the days differ from the provider's charges; add both to the totals."""
    by_id: dict[str, ChargeInfo] = {charge.id: charge for charge in charges}
    # A payment at the provider may hold declined charges before the one that succeeded: prefer that one.
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
            provider=day.provider,
            status__in=PAID_STATUSES,
            paid_at__gte=day.wide.start,
            paid_at__lt=day.wide.end,
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
    # The provider's captured charges of the day we did not find among our captured payments of
    # the window: look for their payment whatever its status or date, in one query.
    unmatched = [
        c for c in charges if c.status == "succeeded" and day.holds(c.created) and c.id not in matched
    ]
    if unmatched:
        known = Payment.objects.filter(
            Q(provider_charge_id__in=[c.id for c in unmatched])
            | Q(provider_payment_id__in=[c.payment_intent_id for c in unmatched if c.payment_intent_id]),
            provider=day.provider,
        ).only(*fields)
        by_charge = {p.provider_charge_id: p for p in known if p.provider_charge_id}
        by_pi = {p.provider_payment_id: p for p in known if p.provider_payment_id}
        for stray in unmatched:
            pairs.append((by_charge.get(stray.id) or by_pi.get(stray.payment_intent_id or ""), stray))

    found: list[Mismatch] = []
    for payment, charge in pairs:
        captured = payment is not None and payment.status in PAID_STATUSES
        ours_in_day = payment is not None and captured and day.holds(payment.paid_at)
        theirs_in_day = charge is not None and charge.status == "succeeded" and day.holds(charge.created)
        if ours_in_day and payment is not None:
            row = day.totals_of(payment.currency)
            row.our_payments += 1
            row.our_gross += payment.amount
        if theirs_in_day and charge is not None:
            row = day.totals_of(charge.currency)
            row.provider_charges += 1
            row.provider_gross += charge.amount
        if not (ours_in_day or theirs_in_day):
            continue
        found.extend(_payment_mismatches(day, payment, charge, ours_in_day, theirs_in_day))
    return found


def _payment_mismatches(
    day: ReportDays,
    payment: Payment | None,
    charge: ChargeInfo | None,
    ours_in_day: bool,
    theirs_in_day: bool,
) -> list[Mismatch]:
    our_id = str(payment.pk) if payment is not None else None
    if charge is None:
        if payment is None:
            return []
        return [
            Mismatch(
                MISSING_AT_PROVIDER,
                PAYMENT,
                our_id,
                payment.provider_charge_id or payment.provider_payment_id,
                ours=_payment_money(payment),
                theirs=str(_("no charge that day")),
                provider=day.provider,
            )
        ]
    found: list[Mismatch] = []

    def add(kind: str, ours: str, theirs: str) -> None:
        found.append(
            Mismatch(kind, PAYMENT, our_id, charge.id, ours=ours, theirs=theirs, provider=day.provider)
        )

    if payment is None:
        add(MISSING_WITH_US, str(_("no payment")), format_money(charge.amount, charge.currency))
        return found
    if payment.status not in PAID_STATUSES or charge.status != "succeeded":
        add(STATUS_DIFFERS, payment.get_status_display(), charge.status)
    elif ours_in_day != theirs_in_day:
        add(OTHER_DAY, moment_text(payment.paid_at), moment_text(charge.created))
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
        line = day.ledger.of(charge.balance_transaction_id, charge.id)
        if line is None:
            add(BALANCE_ENTRY_MISSING, _payment_money(payment), charge.balance_transaction_id or "-")
        # Held against our amount (when the provider's charge agrees with it, else that is the
        # one mismatch to show). A balance in another currency holds the converted amount:
        # there is nothing to compare it with.
        elif agree and line.currency == payment.currency and line.amount != payment.amount:
            add(
                BALANCE_ENTRY_DIFFERS,
                _payment_money(payment),
                f"{line.id}: {format_money(line.amount, line.currency)}",
            )
    return found


def _payment_money(payment: Payment) -> str:
    return format_money(payment.amount, payment.currency)
