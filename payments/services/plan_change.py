"""Plan changes that take money: an upgrade's prorated charge, exactly once, then the change.

How "exactly once" holds (docs/plan-changes.md):

1. Under the subscription's lock, the change is priced (`billing.plan_change.plan_change_quote`)
   and its rows are written and **committed before any call to the provider**: a `PlanChange`
   unique by its key (subscription, from-tariff, to-tariff, the period's start and end, and a
   generation moved on only after a payment of that move was refunded) and a payment of kind
   `change` whose id and idempotency key derive from that key. A retried, double-clicked or
   concurrent request finds the same rows.
2. Under the subscription's lock again, then the payment's (the lock order), the state is read
   afresh and the saved card is charged off-session with the key `<change key>:<attempts>`
   (a decline, or a bank's request to authenticate, moves the attempt on, as a renewal's does).
   Requests racing for one change queue on the lock; the first charges, the others find it paid.
3. Paid: the payment is booked and the subscription moves to the new tariff in the same
   transaction. Declined: nothing changes and the decline is answered (402 `card_declined`).
   Authentication wanted: nothing changes; a checkout page that pays exactly this payment is
   opened and answered as `payment_action_url`, and its settlement (webhook, result page,
   reconciliation) applies the change then (`plan_change_payment_settle`).
4. A charge whose answer was lost stays a pending payment: the retry sends the same request
   (same key, same amount) and the provider answers with the first charge; the webhook, the
   pending-payments and the unbooked-charges reconciliations settle it through
   `plan_change_apply_intent`. Money that can no longer buy its change (the subscription was
   canceled, renewed or changed otherwise meanwhile) is refunded in full (`payments/services/unhomed.py`).
"""

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext_noop
from rest_framework import status

from billing.locks import subscription_lock
from billing.models import PlanChange, PlanChangeStatus, Subscription
from billing.plan_change import (
    ChangeQuote,
    PlanChangeKind,
    plan_change_key,
    plan_change_quote,
    subscription_downgrade_schedule,
    subscription_upgrade_apply,
)
from core import clock
from core.errors import DomainError
from payments import facts
from payments.gateways import get_gateway
from payments.gateways.base import ProviderPayment
from payments.gateways.errors import AuthenticationRequired, CardDeclined, GatewayError
from payments.models import (
    PAID_STATUSES,
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
)
from payments.selectors import provider_customer_get, subscription_provider
from payments.services.checkout import (
    checkout_abandon,
    checkout_is_reusable,
    checkout_open,
    checkout_prepare_for_payment,
    payment_mark_succeeded,
)
from payments.services.customers import off_session_charge
from payments.services.plan_change_settle import (
    PlanChangeRepriced,
    SubscriptionChangedSince,
    plan_change_current_quote,
    plan_change_mark_applied,
    plan_change_payment_settle,
)
from payments.services.refunds.rules import RESERVING_STATUSES
from payments.services.subscribe import PaymentProviderUnavailable
from payments.services.unhomed import payment_refund_unhomed
from tariffs.models import Tariff


class ChangeStatus(enum.StrEnum):
    APPLIED = "applied"
    SCHEDULED = "scheduled"
    # The bank wants the card holder: pay on `payment_action_url`; nothing changed yet.
    ACTION_REQUIRED = "action_required"
    # The provider has not finished the charge; its webhook (or reconciliation) applies the change.
    PROCESSING = "processing"


class ChangeCardDeclined(DomainError):
    code = "card_declined"
    message = gettext_noop("The card was declined.")
    status_code = status.HTTP_402_PAYMENT_REQUIRED


class NoPaymentMethodForChange(DomainError):
    code = "no_payment_method"
    message = gettext_noop("No card is saved to pay the upgrade: update the payment method first.")
    status_code = status.HTTP_409_CONFLICT


@dataclass(frozen=True)
class ChangeResult:
    """What a change request did, as the viewer is answered."""

    status: ChangeStatus
    kind: PlanChangeKind
    amount_due: int
    currency: str
    effective_at: datetime
    new_period_end: datetime
    subscription: Subscription
    payment: Payment | None = None
    payment_action_url: str | None = None


# Change payment ids derive from the change's key: a retry rebuilds the very same charge request.
CHANGE_PAYMENT_NAMESPACE = uuid.UUID("5b0e6f7c-2a1d-4c3e-9f80-7a6b5c4d3e21")


def change_payment_id(key: str) -> uuid.UUID:
    """Return the id of the payment that pays the change with this key."""
    return uuid.uuid5(CHANGE_PAYMENT_NAMESPACE, key)


def change_charge_idempotency_key(payment: Payment) -> str:
    """Return the key of the next off-session charge of a change payment (moves on after each refusal)."""
    return f"{payment.idempotency_key}:{payment.failed_attempts}"


def plan_change_preview(*, subscription: Subscription, tariff: Tariff) -> ChangeQuote:
    """Return what changing to `tariff` now would cost and do; writes nothing."""
    return plan_change_quote(subscription=subscription, tariff=tariff, at=clock.now())


@dataclass(frozen=True)
class _Prepared:
    """A step's outcome: the answer already, the payment to charge, or what to do before asking again."""

    result: ChangeResult | None = None
    payment_id: uuid.UUID | None = None
    checkout_to_open: uuid.UUID | None = None
    # Open pages of the payment too close to their end to hand out: expired first, then ask again.
    stale_pages: tuple[uuid.UUID, ...] = ()
    # The change was priced on a period that has moved since: ask again, for the new change.
    ask_again: bool = False


# Each round ends in an answer or in one of the two events above, which do not happen twice in a
# row unless the subscription keeps changing under the request; then it is answered as changed.
REQUEST_ROUNDS = 3


def plan_change_request(
    *, subscription: Subscription, tariff: Tariff, actor: AbstractBaseUser | None = None, reason: str = ""
) -> ChangeResult:
    """Change a subscription to `tariff`: an upgrade now (charged once), a downgrade at the period end.

    Raises a `DomainError` when the change is refused (see `billing.plan_change`), when the card
    is declined (`ChangeCardDeclined`, after the decline is recorded), when no card is saved
    (`NoPaymentMethodForChange`) or the provider cannot be reached (`PaymentProviderUnavailable`;
    the retry sends the same request).
    """
    for _ in range(REQUEST_ROUNDS):
        prepared = _prepare(subscription=subscription, tariff=tariff, actor=actor, reason=reason)
        if prepared.stale_pages:
            _expire_pages(prepared.stale_pages)
            continue
        if prepared.result is not None and prepared.checkout_to_open is None:
            return prepared.result
        if prepared.payment_id is not None:
            prepared = _charge(payment_id=prepared.payment_id, actor=actor, reason=reason)
        if prepared.ask_again:
            continue
        if prepared.result is None:
            raise RuntimeError("a plan change request ended without an answer")
        if prepared.checkout_to_open is not None:
            return _with_page_opened(prepared.result, prepared.checkout_to_open)
        return prepared.result
    raise SubscriptionChangedSince()


def _expire_pages(checkout_ids: tuple[uuid.UUID, ...]) -> None:
    """Expire, at the provider first, pages too close to their end to hand out (no lock of ours held).

    `checkout_abandon` takes the account's lock, then the subscription's: it runs between our
    transactions, never under the subscription's lock (the lock order). A page that turns out
    paid is applied by it, and the next round answers the change as applied.
    """
    for checkout_id in checkout_ids:
        try:
            checkout_abandon(checkout=CheckoutSession.objects.get(pk=checkout_id))
        except GatewayError as exc:
            raise PaymentProviderUnavailable(
                details={"provider_error": exc.code or type(exc).__name__}
            ) from exc


@transaction.atomic
def _prepare(
    *, subscription: Subscription, tariff: Tariff, actor: AbstractBaseUser | None, reason: str
) -> _Prepared:
    locked = subscription_lock(subscription.pk)
    replay = _applied_already(locked, tariff)
    if replay is not None:
        return _Prepared(result=replay)
    now = clock.now()
    quote = plan_change_quote(subscription=locked, tariff=tariff, at=now)
    if quote.kind == PlanChangeKind.DOWNGRADE:
        scheduled, quote = subscription_downgrade_schedule(
            subscription=locked, tariff=tariff, at=now, actor=actor, reason=reason
        )
        return _Prepared(result=_result(ChangeStatus.SCHEDULED, quote, scheduled))
    change = _change_to_pay(locked, tariff, quote)
    key = change.key
    if quote.amount_due == 0:
        # Nothing to charge (a trial, or a promo making both prices equal): it applies at once.
        applied = subscription_upgrade_apply(
            subscription=locked, quote=quote, amount_paid=0, actor=actor, reason=reason
        )
        plan_change_mark_applied(change, amount=0, at=now)
        return _Prepared(result=_result(ChangeStatus.APPLIED, quote, applied))
    payment = Payment.objects.select_for_update().filter(pk=change_payment_id(key)).first()
    if payment is None:
        payment = Payment.objects.create(
            id=change_payment_id(key),
            subscription=locked,
            kind=PaymentKind.CHANGE,
            amount=quote.amount_due,
            currency=quote.currency,
            provider=subscription_provider(subscription=locked),
            period_start=now,
            period_end=quote.period_end,
            idempotency_key=key,
        )
    elif payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        waiting = _live_page(payment, now)
        if waiting is not None:
            # The bank's confirmation page is still open: the viewer pays there, not twice.
            return _Prepared(
                result=_result(ChangeStatus.ACTION_REQUIRED, quote, locked, payment, waiting.url or None),
                checkout_to_open=waiting.pk,
            )
        stale = tuple(
            payment.checkout_sessions.filter(status=CheckoutStatus.OPEN).values_list("pk", flat=True)
        )
        if stale:
            # Open on our side but at (or past) its end at the provider, its expiry not yet in: a
            # dead page must not be answered, and must not be paid once a new attempt is made.
            # Expired outside this transaction (`_expire_pages`), then asked again.
            return _Prepared(stale_pages=stale)
        # A new attempt after a decline (or a page left unpaid), priced as of now.
        if payment.status == PaymentStatus.CANCELED:
            # Given up before an answer came: its charge may still have reached the provider, so
            # the new attempt (maybe another amount) takes the next key; such a charge, if any,
            # is booked by reconciliation and refunded, as it no longer has a change to pay.
            payment.failed_attempts += 1
        payment.amount, payment.status = quote.amount_due, PaymentStatus.PENDING
        payment.period_start, payment.period_end = now, quote.period_end
        payment.failure_code = payment.failure_message = ""
        payment.save()
    change.amount_due, change.status = payment.amount, PlanChangeStatus.PENDING
    change.save(update_fields=["amount_due", "status", "updated_at"])
    # A pending payment keeps its amount: its charge may have reached the provider already,
    # and the retry must send the very same request for the provider to answer it again.
    return _Prepared(payment_id=payment.pk)


def _charge(*, payment_id: uuid.UUID, actor: AbstractBaseUser | None, reason: str) -> _Prepared:
    with transaction.atomic():
        outcome = _charge_locked(payment_id=payment_id, actor=actor, reason=reason)
    # A refusal is committed first (the viewer and support see it on the payment), then answered.
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def _charge_locked(
    *, payment_id: uuid.UUID, actor: AbstractBaseUser | None, reason: str
) -> _Prepared | DomainError:
    subscription_id = Payment.objects.values_list("subscription_id", flat=True).get(pk=payment_id)
    locked = subscription_lock(subscription_id)
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    change = PlanChange.objects.select_related("to_tariff").get(key=payment.idempotency_key)
    now = clock.now()
    if change.status == PlanChangeStatus.APPLIED:
        replay = _applied_already(locked, change.to_tariff)
        if replay is not None:
            return _Prepared(result=replay)
        # Applied, then changed again since: this request's change is over.
        return SubscriptionChangedSince()
    if payment.status in PAID_STATUSES and _money_given_back(payment):
        # Refunded, or a refund is under way: that money pays for nothing any more. This change is
        # over; asked again, it is a new one with its own payment (`_change_to_pay`).
        _abandon(change, payment)
        return SubscriptionChangedSince()
    if payment.status in PAID_STATUSES:
        # Paid by an earlier attempt whose answer came another way: book it as the webhook would.
        quote = plan_change_quote(subscription=locked, tariff=change.to_tariff, at=now)
        _settle_paid(locked, payment, actor=actor, reason=reason)
        return _Prepared(result=_result(ChangeStatus.APPLIED, quote, locked, payment))
    try:
        quote = plan_change_current_quote(locked, change, now)
    except PlanChangeRepriced:
        # The period was extended since step 1: the same move is another change at another
        # price. This one is given up (its payment, if ever charged, is booked and refunded by
        # reconciliation) and the request asks again, for the change as it is now.
        _abandon(change, payment)
        return _Prepared(ask_again=True)
    except DomainError as exc:
        _abandon(change, payment)
        return exc
    if payment.status != PaymentStatus.PENDING:
        waiting = _live_page(payment, now)
        url = waiting.url if waiting is not None else None
        return _Prepared(
            result=_result(ChangeStatus.ACTION_REQUIRED, quote, locked, payment, url or None),
            checkout_to_open=waiting.pk if waiting is not None else None,
        )
    saved = provider_customer_get(account_id=locked.account_id, provider=payment.provider)
    if saved is None or not saved.payment_method_ref:
        _abandon(change, payment)
        return NoPaymentMethodForChange()
    try:
        intent = get_gateway(payment.provider).charge_off_session(
            off_session_charge(
                saved=saved,
                payment=payment,
                subscription=locked,
                description=f"{change.to_tariff.name} upgrade",
                idempotency_key=change_charge_idempotency_key(payment),
            )
        )
    except AuthenticationRequired as exc:
        _record_refusal(payment, "authentication_required", exc.message, exc.payment_intent_id)
        checkout = checkout_prepare_for_payment(payment=payment)
        return _Prepared(
            result=_result(ChangeStatus.ACTION_REQUIRED, quote, locked, payment),
            checkout_to_open=checkout.pk,
        )
    except CardDeclined as exc:
        code = exc.decline_code or exc.code or "card_declined"
        _record_refusal(payment, code, exc.message, exc.payment_intent_id)
        return ChangeCardDeclined(
            exc.message or ChangeCardDeclined.message,
            details={"decline_code": code, "payment": str(payment.pk)},
        )
    except GatewayError as exc:
        # Nothing more is recorded: the payment stays pending and a retry sends the same request.
        return PaymentProviderUnavailable(details={"provider_error": exc.code or type(exc).__name__})
    if intent.status != "succeeded":
        Payment.objects.filter(pk=payment.pk, provider_payment_id__isnull=True).update(
            provider_payment_id=intent.id
        )
        return _Prepared(result=_result(ChangeStatus.PROCESSING, quote, locked, payment))
    payment_mark_succeeded(payment=payment, intent=intent, card=intent.card, now=now)
    _settle_paid(locked, payment, actor=actor, reason=reason)
    return _Prepared(result=_result(ChangeStatus.APPLIED, quote, locked, payment))


def _settle_paid(
    subscription: Subscription, payment: Payment, *, actor: AbstractBaseUser | None, reason: str
) -> None:
    """Apply the change a locked, paid payment paid for, or refund it in full if it has no home."""
    if plan_change_payment_settle(subscription=subscription, payment=payment, actor=actor, reason=reason):
        # Read again under the lock: the change was applied to the row through its own read.
        facts.payment_succeeded.record(payment=payment, subscription=subscription_lock(subscription.pk))
    else:
        payment_refund_unhomed(payment=payment, subscription_status=subscription.status)


def _abandon(change: PlanChange, payment: Payment) -> None:
    """Give up a change that can no longer be made (under the subscription's lock).

    Its payment stays as it is: a pending one may have been charged with an answer lost, and the
    same change asked again later must send the very same request, which the provider then
    answers with that charge; a charge nobody asks for again is booked by reconciliation and,
    having no change to pay any more, refunded in full.
    """
    change.status = PlanChangeStatus.ABANDONED
    change.save(update_fields=["status", "updated_at"])


def plan_change_apply_intent(*, payment: Payment, intent: ProviderPayment) -> None:
    """Apply what the provider says of a change payment's off-session charge (an event, a re-read).

    A succeeded charge is always booked: it applies its change, or, when the change can no
    longer be made, it is refunded in full. The subscription is locked before the payment.
    """
    if intent.status != "succeeded":
        Payment.objects.filter(pk=payment.pk, provider_payment_id__isnull=True).update(
            provider_payment_id=intent.id
        )
        return
    with transaction.atomic():
        subscription = subscription_lock(payment.subscription_id)
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status in PAID_STATUSES:
            return
        payment_mark_succeeded(payment=locked, intent=intent, card=intent.card, now=clock.now())
        _settle_paid(subscription, locked, actor=None, reason="")


def _record_refusal(payment: Payment, code: str, message: str, payment_intent_id: str | None) -> None:
    payment.failed_attempts += 1
    payment.status = PaymentStatus.FAILED
    payment.failure_code, payment.failure_message = code, message
    payment.provider_payment_id = payment_intent_id or payment.provider_payment_id
    payment.save()


def _live_page(payment: Payment, now: datetime) -> CheckoutSession | None:
    """Return the payment's open page with time left to pay it, as action links hand one out."""
    pages = payment.checkout_sessions.filter(status=CheckoutStatus.OPEN).order_by("-created_at")
    return next((page for page in pages if checkout_is_reusable(page, now=now)), None)


def _money_given_back(payment: Payment) -> bool:
    """Return whether a paid payment was refunded, in part or in full, or has a refund under way."""
    if payment.status != PaymentStatus.SUCCEEDED:
        return True
    return payment.refunds.filter(status__in=RESERVING_STATUSES).exists()


def _change_to_pay(subscription: Subscription, tariff: Tariff, quote: ChangeQuote) -> PlanChange:
    """Return the `PlanChange` this request pays for: the move's latest one, or a new one (locked subscription).

    The move's changes are numbered by the generation in their key. The latest is reused (a
    retry, a new attempt after a decline, a change given up before it took money), so that a
    retry sends the very same request; one that took effect, or whose payment took money that
    was given back (a refund of a change that had lost its home), is spent, and the move asked
    again is the next generation, with a payment of its own: refunded money never pays for a
    change, nor does one change's payment pay for two.
    """
    generation = 0
    while True:
        key = plan_change_key(subscription=subscription, tariff=tariff, generation=generation)
        change = PlanChange.objects.filter(key=key).first()
        if change is None:
            return PlanChange.objects.create(
                key=key,
                subscription=subscription,
                from_tariff_id=subscription.tariff_id,
                to_tariff=tariff,
                period_start=quote.from_period_start,
                amount_due=quote.amount_due,
                currency=quote.currency,
            )
        if not _spent(change):
            return change
        generation += 1


def _spent(change: PlanChange) -> bool:
    """Return whether a change's payment can pay for nothing more.

    So it is when the change took effect (found here, it is history: a replay was answered
    before, by `_applied_already`), or was given up after its payment took money (refunded, or
    being refunded).
    """
    if change.status == PlanChangeStatus.APPLIED:
        return True
    if change.status != PlanChangeStatus.ABANDONED:
        return False
    status_ = (
        Payment.objects.filter(pk=change_payment_id(change.key)).values_list("status", flat=True).first()
    )
    return status_ in PAID_STATUSES


def _applied_already(subscription: Subscription, tariff: Tariff) -> ChangeResult | None:
    """Return the answer of an upgrade to `tariff` already applied in this period (a retried request).

    Only a change applied in the current period answers: one of an earlier period (the renewal
    has come since) is history, and asking for the tariff the subscription is on is refused
    (`tariff_unchanged`) rather than answered with an old charge as if just made.
    """
    start, end = subscription.current_period_start, subscription.current_period_end
    if subscription.tariff_id != tariff.pk or start is None or end is None:
        return None
    change = (
        PlanChange.objects.filter(
            subscription=subscription,
            to_tariff=tariff,
            status=PlanChangeStatus.APPLIED,
            # A same-length upgrade applies inside the period; another length starts it.
            applied_at__gte=start,
        )
        .order_by("-applied_at")
        .first()
    )
    if change is None or change.applied_at is None:
        return None
    payment = Payment.objects.filter(pk=change_payment_id(change.key)).first()
    return ChangeResult(
        status=ChangeStatus.APPLIED,
        kind=PlanChangeKind.UPGRADE,
        amount_due=change.amount_due,
        currency=change.currency,
        effective_at=change.applied_at,
        new_period_end=end,
        subscription=subscription,
        payment=payment,
    )


def _result(
    status_: ChangeStatus,
    quote: ChangeQuote,
    subscription: Subscription,
    payment: Payment | None = None,
    url: str | None = None,
) -> ChangeResult:
    return ChangeResult(
        status=status_,
        kind=quote.kind,
        amount_due=payment.amount if payment is not None else quote.amount_due,
        currency=quote.currency,
        effective_at=quote.effective_at,
        new_period_end=quote.period_end,
        subscription=subscription,
        payment=payment,
        payment_action_url=url,
    )


def _with_page_opened(result: ChangeResult, checkout_id: uuid.UUID) -> ChangeResult:
    """Open the bank's confirmation page (after commit: the refusal stays recorded) and answer its URL."""
    try:
        checkout = checkout_open(checkout_id=checkout_id)
    except GatewayError as exc:
        # The checkout row stays: the retry opens it with the same key.
        raise PaymentProviderUnavailable() from exc
    return ChangeResult(
        status=result.status,
        kind=result.kind,
        amount_due=result.amount_due,
        currency=result.currency,
        effective_at=result.effective_at,
        new_period_end=result.new_period_end,
        subscription=result.subscription,
        payment=result.payment,
        payment_action_url=checkout.url or None,
    )
