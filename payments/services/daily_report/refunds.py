"""The reconciliation report's comparison of refunds: ours that succeeded against the provider's.

Ours are the provider's refunds that succeeded with us in the window (`succeeded_at`); the
provider's are those it created in it and did not fail or cancel. Matched by the provider's id.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.money import format_money
from payments.gateways.base import RefundInfo
from payments.models import Refund, RefundStatus
from payments.services.daily_report.shapes import (
    AMOUNT_DIFFERS,
    BALANCE_ENTRY_DIFFERS,
    BALANCE_ENTRY_MISSING,
    CURRENCY_DIFFERS,
    MISSING_AT_PROVIDER,
    MISSING_WITH_US,
    OTHER_DAY,
    REFUND,
    STATUS_DIFFERS,
    Mismatch,
)
from payments.services.daily_report.window import ReportDays, moment_text

# A provider's refunds in these statuses never moved money back; in any other (succeeded, or on
# its way) they did or will. An unknown status counts as money moving: better listed than hidden.
REFUND_NOT_ISSUED = frozenset({"failed", "canceled"})


def compare_refunds(day: ReportDays, their_refunds: list[RefundInfo]) -> list[Mismatch]:
    """Return how our succeeded refunds of the days differ from the provider's; add both to the totals."""
    by_id: dict[str, RefundInfo] = {refund.id: refund for refund in their_refunds}
    ours = list(
        Refund.objects.filter(
            provider=day.provider,
            status=RefundStatus.SUCCEEDED,
            succeeded_at__gte=day.wide.start,
            succeeded_at__lt=day.wide.end,
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
    unmatched = [r for r in their_refunds if _issued(r) and day.holds(r.created) and r.id not in matched]
    if unmatched:
        known = {
            r.provider_refund_id: r
            for r in Refund.objects.filter(
                provider=day.provider, provider_refund_id__in=[r.id for r in unmatched]
            ).only("id", "amount", "currency", "status", "succeeded_at", "provider_refund_id")
        }
        pairs.extend((known.get(theirs.id), theirs) for theirs in unmatched)

    found: list[Mismatch] = []
    for refund, theirs in pairs:
        ours_in_day = (
            refund is not None and refund.status == RefundStatus.SUCCEEDED and day.holds(refund.succeeded_at)
        )
        theirs_in_day = theirs is not None and _issued(theirs) and day.holds(theirs.created)
        if ours_in_day and refund is not None:
            day.totals_of(refund.currency).our_refunds += refund.amount
        if theirs_in_day and theirs is not None:
            day.totals_of(theirs.currency).provider_refunds += theirs.amount
        if not (ours_in_day or theirs_in_day):
            continue
        found.extend(_refund_mismatches(day, refund, theirs, ours_in_day, theirs_in_day))
    return found


def _issued(refund: RefundInfo) -> bool:
    """Return whether a provider's refund moved (or is moving) money back."""
    return refund.status not in REFUND_NOT_ISSUED


def _refund_mismatches(
    day: ReportDays,
    refund: Refund | None,
    theirs: RefundInfo | None,
    ours_in_day: bool,
    theirs_in_day: bool,
) -> list[Mismatch]:
    our_id = str(refund.pk) if refund is not None else None
    if theirs is None:
        if refund is None:
            return []
        return [
            Mismatch(
                MISSING_AT_PROVIDER,
                REFUND,
                our_id,
                refund.provider_refund_id,
                ours=format_money(refund.amount, refund.currency),
                theirs=str(_("no refund that day")),
                provider=day.provider,
            )
        ]
    found: list[Mismatch] = []

    def add(kind: str, ours: str, their_side: str) -> None:
        found.append(
            Mismatch(kind, REFUND, our_id, theirs.id, ours=ours, theirs=their_side, provider=day.provider)
        )

    if refund is None:
        add(MISSING_WITH_US, str(_("no refund")), format_money(theirs.amount, theirs.currency))
        return found
    if refund.status != RefundStatus.SUCCEEDED or theirs.status != "succeeded":
        add(STATUS_DIFFERS, refund.get_status_display(), theirs.status)
    elif ours_in_day != theirs_in_day:
        add(OTHER_DAY, moment_text(refund.succeeded_at), moment_text(theirs.created))
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
        line = day.ledger.of(theirs.balance_transaction_id, theirs.id)
        if line is None:
            add(
                BALANCE_ENTRY_MISSING,
                format_money(refund.amount, refund.currency),
                theirs.balance_transaction_id or "-",
            )
        elif agree and line.currency == refund.currency and line.amount != -refund.amount:
            add(
                BALANCE_ENTRY_DIFFERS,
                format_money(-refund.amount, refund.currency),
                f"{line.id}: {format_money(line.amount, line.currency)}",
            )
    return found
