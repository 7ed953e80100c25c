"""Posting to the books: one entry per business event, unique by its source, always balanced.

The listeners here run in the transaction of the fact they follow (ledger/listeners.py), under
the locks its service took (the payment's, for captures and refunds; the subscription's, for
extensions), so what they read of a payment's plan is what was decided.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import transaction

from billing.models import Subscription
from core import clock
from core.inserts import insert_or_ignore
from ledger import accounts_chart as chart
from ledger.models import EntryKind, JournalEntry, LedgerAccount, Posting
from ledger.services import recognition
from payments.models import PAID_STATUSES, Payment


class LedgerUnbalanced(Exception):
    """An entry whose postings do not sum to zero: a bug, never written."""


@dataclass(frozen=True)
class EntryDraft:
    """One entry of many written at once (`entries_post`): what `entry_post` takes, by payment id."""

    source: str
    kind: str
    currency: str
    effective_at: datetime
    lines: Sequence[tuple[str, int]]
    payment_id: UUID | None = None
    memo: str = ""


def entry_post(
    *,
    source: str,
    kind: str,
    currency: str,
    effective_at: datetime,
    lines: Sequence[tuple[str, int]],
    payment: Payment | None = None,
    memo: str = "",
) -> JournalEntry | None:
    """Write one balanced entry unless its source is already in the books; return it, or None.

    `lines` are (account code, signed amount): debits positive, credits negative, in
    `currency`. Lines of zero are left out; an entry with no line is not written.
    """
    kept = entry_lines(source=source, lines=lines)
    if not kept:
        return None
    accounts = accounts_for(keys=((code, currency) for code, _ in kept))
    entry = JournalEntry(
        kind=kind, source=source, effective_at=effective_at, payment=payment, memo=memo[:255]
    )
    # The entry and its postings together, with no savepoint inside a caller's transaction (every
    # payment posts one): a failed insert aborts that transaction in PostgreSQL in any case.
    with transaction.atomic(savepoint=False):
        if not insert_or_ignore(entry, conflict_fields=("source",)):
            return None  # posted already: a replayed event or a job run twice
        Posting.objects.bulk_create(
            Posting(
                entry=entry,
                account=accounts[code, currency],
                amount=amount,
                currency=currency,
                effective_at=effective_at,
            )
            for code, amount in kept
        )
    return entry


def entry_lines(*, source: str, lines: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return an entry's lines but those of zero; raise LedgerUnbalanced unless they sum to zero."""
    kept = [(code, amount) for code, amount in lines if amount != 0]
    if sum(amount for _, amount in kept) != 0:
        raise LedgerUnbalanced(f"{source}: {kept}")
    return kept


@transaction.atomic
def entries_post(*, drafts: Sequence[EntryDraft]) -> list[JournalEntry]:
    """Write many new entries with one insert of the entries and one of their postings; return them.

    For a job that posts thousands at once and knows, under its locks, that none of the
    sources is in the books yet (see `sources_posted`): where `entry_post` skips a source
    posted already, here it fails the whole insert (IntegrityError). The checks are
    `entry_post`'s: lines of zero are left out, an entry with no line is not written (nor
    returned), each entry balances, and each posting is on its entry's currency's account.
    """
    kept = [(draft, entry_lines(source=draft.source, lines=draft.lines)) for draft in drafts]
    kept = [(draft, lines) for draft, lines in kept if lines]
    if not kept:
        return []
    accounts = accounts_for(keys=((code, draft.currency) for draft, lines in kept for code, _ in lines))
    # One instant for the lot, as they are recorded by one statement (and the clock is read once).
    recorded_at = clock.now()
    # bulk_create sets the ids it inserted (RETURNING: PostgreSQL, and SQLite from 3.35).
    entries = JournalEntry.objects.bulk_create(
        JournalEntry(
            kind=draft.kind,
            source=draft.source,
            effective_at=draft.effective_at,
            payment_id=draft.payment_id,
            memo=draft.memo[:255],
            created_at=recorded_at,
        )
        for draft, _ in kept
    )
    Posting.objects.bulk_create(
        Posting(
            entry_id=entry.pk,
            account_id=accounts[code, draft.currency].pk,
            amount=amount,
            currency=draft.currency,
            effective_at=draft.effective_at,
        )
        for entry, (draft, lines) in zip(entries, kept, strict=True)
        for code, amount in lines
    )
    return entries


def sources_posted(*, sources: Iterable[str]) -> set[str]:
    """Return which of `sources` are in the books already."""
    return set(JournalEntry.objects.filter(source__in=list(sources)).values_list("source", flat=True))


def account_for(code: str, currency: str) -> LedgerAccount:
    """Return the account of `code` in `currency`, opening it on first use."""
    account, _ = LedgerAccount.objects.get_or_create(code=code, currency=currency)
    return account


def accounts_for(*, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], LedgerAccount]:
    """Return the accounts of (code, currency) pairs by pair: one query once they are all open."""
    wanted = set(keys)
    codes, currencies = {code for code, _ in wanted}, {currency for _, currency in wanted}
    found = {
        (account.code, account.currency): account
        for account in LedgerAccount.objects.filter(code__in=codes, currency__in=currencies)
    }
    for code, currency in wanted - found.keys():
        found[code, currency] = account_for(code, currency)
    return {key: found[key] for key in wanted}


def payment_captured(*, payment: Payment) -> None:
    """Post money a provider took: held by the provider for us, owed to the viewer as service.

    Every captured payment, also one refunded at once for lack of a home (then refunded in
    full out of deferred revenue).
    """
    entry_post(
        source=f"payment:{payment.pk}",
        kind=EntryKind.PAYMENT_CAPTURED,
        currency=payment.currency,
        effective_at=payment.paid_at or clock.now(),
        lines=[
            (chart.provider_clearing(payment.provider), payment.amount),
            (chart.DEFERRED_REVENUE, -payment.amount),
        ],
        payment=payment,
    )


def payment_succeeded(*, payment: Payment, subscription: Subscription | None = None) -> None:
    """Start earning a payment that paid for a period: its straight line over that period.

    Not at capture: a first payment learns its period when the subscription starts, and a
    charge without a home (refunded at once) pays for nothing and is never earned. The
    fact's subscription is not needed: the payment carries its own period.
    """
    recognition.plan_start(payment=payment)


def payment_refunded(*, payment: Payment, amount: int) -> None:
    """Post money given back: the unearned part out of deferred revenue, the earned part to refunds.

    Recorded each time a payment's refunded total moves forward (under its lock), so the new
    total names the entry: a replayed event moves nothing and posts nothing.
    """
    refund_post(payment=payment, amount=amount, source=f"refund:{payment.pk}:{payment.refunded_amount}")


def refund_post(
    *, payment: Payment, amount: int, source: str, effective_at: datetime | None = None, memo: str = ""
) -> JournalEntry | None:
    """Post `amount` of a locked payment given back, once per `source` (the backfill dates its own).

    The payment's plan gives the split and moves only when the entry is new: the caller holds
    the payment's lock, so what is read here is what is posted.
    """
    if JournalEntry.objects.filter(source=source).exists():
        return None  # posted already: the plan must not move twice
    unearned, earned = recognition.plan_refund(payment=payment, amount=amount)
    return entry_post(
        source=source,
        kind=EntryKind.REFUND,
        currency=payment.currency,
        effective_at=effective_at or clock.now(),
        lines=[
            (chart.DEFERRED_REVENUE, unearned),
            (chart.REFUNDS, earned),
            (chart.provider_clearing(payment.provider), -amount),
        ],
        payment=payment,
        memo=memo,
    )


def subscription_extended(*, subscription: Subscription, previous_period_end: datetime, days: int) -> None:
    """Stretch what is left of the current paid period's revenue over the longer period.

    The current period's payment is the latest paid one that started before the period's
    old end: its own `period_end` stays what was paid for, so a second extension of the same
    period finds it the same way.
    """
    payment = (
        Payment.objects.filter(
            subscription=subscription, status__in=PAID_STATUSES, period_start__lt=previous_period_end
        )
        .order_by("-period_start", "-paid_at")
        .first()
    )
    if payment is not None:
        recognition.plan_extend(payment=payment, days=days)
