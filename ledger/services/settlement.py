"""Provider fees and payouts: what each provider's own ledger says it kept and paid out.

A provider reports them only in its settlement lines (Stripe's balance transactions), a day
or so after the money moved, so they are posted by a daily job, not in the transaction of a
payment:

- each line's fee: `provider_fees` debited, the provider's clearing account credited, as
  `fee:<provider>:<line id>`;
- each payout line: the money leaves clearing for `payouts:<provider>`, as
  `payout:<provider>:<line id>` (a failed or canceled payout, which puts the money back,
  posts the other way).

Both are in the line's own (settlement) currency, and dated when the provider booked the line.
Each line posts once whatever the runs: the sources are unique, so the job may read a few
days back, and be run twice, without posting anything twice.
"""

from dataclasses import dataclass
from datetime import date

from django.db import transaction

from core.days import utc_day_range
from ledger import accounts_chart as chart
from ledger.models import EntryKind
from ledger.services.postings import entry_post
from payments.gateways import get_gateway
from payments.gateways.base import CreatedRange, SettlementLine


@dataclass
class SettlementPosted:
    """What one provider's day of settlement lines added to the books."""

    provider: str
    day: date
    lines: int = 0
    fees: int = 0
    payouts: int = 0


def provider_settlement_post(*, provider: str, day: date) -> SettlementPosted:
    """Post the fees and payouts `provider` booked on the UTC `day`, each line once.

    Reads the provider first, then writes without holding anything across the call.
    Raises the gateway's errors when the provider cannot be read: a later run posts the day.
    """
    start, end = utc_day_range(day)
    lines = get_gateway(provider).list_settlement_lines(CreatedRange(start=start, end=end))
    posted = SettlementPosted(provider=provider, day=day, lines=len(lines))
    for line in sorted(lines, key=lambda line: (line.created, line.id)):
        with transaction.atomic():
            if _fee_post(provider, line):
                posted.fees += 1
            if _payout_post(provider, line):
                posted.payouts += 1
    return posted


def _fee_post(provider: str, line: SettlementLine) -> bool:
    if not line.fee:
        return False
    entry = entry_post(
        source=f"fee:{provider}:{line.id}",
        kind=EntryKind.PROVIDER_FEE,
        currency=line.currency,
        effective_at=line.created,
        lines=[(chart.PROVIDER_FEES, line.fee), (chart.provider_clearing(provider), -line.fee)],
        memo=f"{line.type} {line.source_id or ''}".strip(),
    )
    return entry is not None


def _payout_post(provider: str, line: SettlementLine) -> bool:
    if line.kind != "payout" or not line.amount:
        return False
    # A payout's amount is negative (it leaves the balance); a failed one's positive.
    entry = entry_post(
        source=f"payout:{provider}:{line.id}",
        kind=EntryKind.PAYOUT,
        currency=line.currency,
        effective_at=line.created,
        lines=[(chart.payouts(provider), -line.amount), (chart.provider_clearing(provider), line.amount)],
        memo=f"{line.type} {line.source_id or ''}".strip(),
    )
    return entry is not None
