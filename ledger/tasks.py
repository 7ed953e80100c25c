"""Celery tasks of the ledger: thin adapters around its services."""

from datetime import timedelta
from typing import Any

from celery import shared_task

from core.days import utc_yesterday
from ledger.services.checks import ledger_check_record
from ledger.services.recognition import revenue_recognize
from ledger.services.settlement import provider_settlement_post
from ledger.services.totals import day_totals_compact
from payments.gateways import configured_providers


@shared_task(acks_late=True)
def recognize_revenue() -> dict[str, Any]:
    """Recognise the revenue earned yesterday (UTC, billing clock); a second run posts nothing."""
    result = revenue_recognize(day=utc_yesterday())
    # A first run adds a few rows per batch to the day totals: merge them for the reports now.
    day_totals_compact()
    return {"day": result.day.isoformat(), "entries": result.entries, "recognized": result.recognized}


# Settlement lines are read this many days back each run, so a day a run missed (beat down, the
# provider unreachable) is posted by the next; each line posts once whatever the runs.
SETTLEMENT_LOOKBACK_DAYS = 3


@shared_task(acks_late=True)
def check_ledger() -> dict[str, Any]:
    """Check that the books balance and agree with the payments; store the run for admin."""
    run = ledger_check_record()
    return {"run": run.pk, "balanced": run.balanced, "mismatches": run.mismatch_count}


@shared_task(acks_late=True)
def post_provider_fees(provider: str | None = None) -> dict[str, dict[str, int]]:
    """Post the fees and payouts the providers booked in the last few UTC days (each line once)."""
    yesterday = utc_yesterday()
    days = [yesterday - timedelta(days=back) for back in reversed(range(SETTLEMENT_LOOKBACK_DAYS))]
    posted: dict[str, dict[str, int]] = {}
    for name in [provider] if provider else list(configured_providers()):
        results = [provider_settlement_post(provider=name, day=day) for day in days]
        posted[name] = {"fees": sum(r.fees for r in results), "payouts": sum(r.payouts for r in results)}
    return posted


@shared_task(acks_late=True)
def compact_day_totals() -> dict[str, int]:
    """Merge the day totals the postings since the last run added (nothing is lost if it never runs)."""
    outcome = day_totals_compact()
    return {"removed": outcome.removed, "merged": outcome.merged}
