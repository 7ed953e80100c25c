"""What must hold of viewers' billing whatever ran at once, checked against Stripe's own objects.

- `settle` runs both reconciliation jobs until a pass of them changes nothing: what lost
  webhooks leave undone is put right the way production puts it right, without waiting.
- `StripeView` is what the Stripe sandbox holds (pages, PaymentIntents, charges, refunds),
  read once through its control API.
- `charge_fates` says of every charge Stripe accepted whether it gives the viewer access, was
  refunded, or neither (a lost payment).
- `invariant_violations` is the one consistent-state check of the concurrency tests.

Used by tests/concurrency and by bench/soak_subscribe.py; nothing here imports pytest.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.db.models import Q, Sum

from accounts.models import BillingAccount
from billing.access import grants_access
from billing.models import LIVE_STATUSES, PlanChange, PlanChangeStatus, Subscription
from core import clock
from payments.gateways.stripe_mapping import ACCOUNT_REF_METADATA_KEY
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ReconciliationRunStatus,
    Refund,
    RefundRequest,
    RefundStatus,
)
from payments.services.reconciliation import reconcile_events, reconcile_pending_payments

Obj = dict[str, Any]
# Refunds that hold part of a payment (payments.services.refunds.rules counts the same ones).
RESERVING_STATUSES = (RefundStatus.AWAITING_APPROVAL, RefundStatus.PENDING, RefundStatus.SUCCEEDED)
# Statuses of ours that say the viewer's money was taken and not (wholly) given back.
HELD_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
SETTLE_MAX_PASSES = 10


# --- settling ------------------------------------------------------------------------------


@dataclass
class Settlement:
    """What the reconciliation runs of one settle did."""

    runs: int = 0
    fixed: int = 0
    errors: list[str] = field(default_factory=list)


# What a settle watches to know whether a pass of the jobs changed anything.
_WATCHED = (BillingAccount, Subscription, Payment, CheckoutSession, Refund, RefundRequest)


def _snapshot() -> list[list[tuple[Any, ...]]]:
    """Return every watched row's fields (but `updated_at`, which moves on a save that changes nothing)."""
    snapshot = []
    for model in _WATCHED:
        fields = [f.attname for f in model._meta.concrete_fields if f.name != "updated_at"]
        snapshot.append(list(model._default_manager.order_by("pk").values_list(*fields)))
    return snapshot


def settle(*, max_passes: int = SETTLE_MAX_PASSES) -> Settlement:
    """Run the missed-events job, then the pending-payments job, until a pass changes nothing.

    Pending payments count as overdue at once (`older_than=0`): the point is to apply
    everything Stripe knows, not to wait for it. Errors the runs recorded are returned, and
    so is a run skipped because another held the lease (nothing else runs during a settle).
    """
    settlement = Settlement()
    for _ in range(max_passes):
        before = _snapshot()
        runs = (reconcile_events(), reconcile_pending_payments(older_than=timedelta(0)))
        settlement.runs += len(runs)
        for run in runs:
            settlement.fixed += run.fixed
            if run.status == ReconciliationRunStatus.SKIPPED:
                settlement.errors.append(f"reconciliation ({run.kind}) skipped: another run held the lease")
            if run.error:
                settlement.errors.append(f"reconciliation ({run.kind}) recorded: {run.error}")
        if _snapshot() == before:
            return settlement
    settlement.errors.append(f"reconciliation still changed things after {max_passes} passes")
    return settlement


# --- what Stripe holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class StripeView:
    """The sandbox's Checkout Sessions, PaymentIntents, charges and refunds, by id."""

    sessions: dict[str, Obj]
    intents: dict[str, Obj]
    charges: dict[str, Obj]
    refunds: dict[str, Obj]

    @classmethod
    def read(
        cls, objects: Callable[[str], list[Obj]], customers: Iterable[str] | None = None
    ) -> "StripeView":
        """Read the sandbox's objects (`objects(type)` lists one type), of some customers only if given."""
        wanted = set(customers) if customers is not None else None

        def mine(obj: Obj) -> bool:
            return wanted is None or obj.get("customer") in wanted

        sessions = {obj["id"]: obj for obj in objects("checkout.session") if mine(obj)}
        intents = {obj["id"]: obj for obj in objects("payment_intent") if mine(obj)}
        charges = {obj["id"]: obj for obj in objects("charge") if obj.get("payment_intent") in intents}
        refunds = {obj["id"]: obj for obj in objects("refund") if obj.get("payment_intent") in intents}
        return cls(sessions=sessions, intents=intents, charges=charges, refunds=refunds)

    @staticmethod
    def customers_of(objects: Callable[[str], list[Obj]], user_ids: Iterable[str]) -> set[str]:
        """Return the ids of the Stripe customers made for these cinema users (by their metadata)."""
        users = set(user_ids)
        return {
            customer["id"]
            for customer in objects("customer")
            if (customer.get("metadata") or {}).get(ACCOUNT_REF_METADATA_KEY) in users
        }

    def paid_intents(self) -> list[Obj]:
        """Return the PaymentIntents whose charge Stripe accepted, oldest first."""
        return sorted(
            (intent for intent in self.intents.values() if intent["status"] == "succeeded"),
            key=lambda intent: intent["created"],
        )

    def refunded(self, intent: Obj) -> int:
        """Return how much of an intent's charge Stripe has given back (succeeded refunds)."""
        return sum(
            refund["amount"]
            for refund in self.refunds.values()
            if refund["payment_intent"] == intent["id"] and refund["status"] == "succeeded"
        )


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def gives_access(subscription: Subscription) -> bool:
    """Return whether a subscription gives access now, by the service's own rule."""
    return grants_access(
        status=subscription.status,
        current_period_end=subscription.current_period_end,
        will_renew=subscription.autopay and not subscription.cancel_at_period_end,
        now=clock.now(),
        grace=settings.BILLING_GRACE_PERIOD,
    )


# --- the fate of each accepted charge ------------------------------------------------------


@dataclass(frozen=True)
class ChargeFate:
    """One charge Stripe accepted, and what became of it with us."""

    intent_id: str
    amount: int
    currency: str
    customer: str | None
    payment: Payment | None
    fate: Literal["access", "refunded", "lost"]
    why: str

    def __str__(self) -> str:
        payment = f"payment {self.payment.pk} ({self.payment.status})" if self.payment else "no payment row"
        return f"charge of {_money(self.amount, self.currency)} ({self.intent_id}, {payment}): {self.why}"


def _payment_of(intent: Obj, by_intent: dict[str, Payment], by_id: dict[str, Payment]) -> Payment | None:
    return by_intent.get(intent["id"]) or by_id.get(str((intent.get("metadata") or {}).get("payment_id")))


def _not_honoured(payment: Payment) -> str | None:
    """Return how a paid payment's access falls short, or None if it gives (or gave) what it paid for.

    A payment for a period that is over gave its access if the subscription did not end before
    that period did; any other payment (its period runs now, or it never got one) must give
    access now.
    """
    subscription = payment.subscription
    end = payment.period_end
    if end is not None and end <= clock.now():
        if subscription.ended_at is None or subscription.ended_at >= end:
            return None
        return (
            f"subscription {subscription.pk} ended ({subscription.status}) at {subscription.ended_at:%Y-%m-%d %H:%M}, "
            f"before the period it paid for ended"
        )
    if gives_access(subscription):
        return None
    return f"it pays for subscription {subscription.pk}, which is {subscription.status} and gives no access"


def charge_fates(view: StripeView, payments: Iterable[Payment]) -> list[ChargeFate]:
    """Say of every charge Stripe accepted: it gives access, it was refunded, or it is lost.

    Refunded: Stripe gave the whole charge back. Access: our payment row records it as paid
    (succeeded or partly refunded) and the subscription it pays for gives access now, or gave
    it for the whole of the payment's period if that is over. Anything else (no row, a
    canceled or failed row, a subscription that gives no access) is lost.
    """
    rows = list(payments)
    by_intent = {payment.provider_payment_id: payment for payment in rows if payment.provider_payment_id}
    by_id = {str(payment.pk): payment for payment in rows}
    fates = []
    for intent in view.paid_intents():
        payment = _payment_of(intent, by_intent, by_id)
        amount, refunded = intent["amount"], view.refunded(intent)
        if refunded >= amount:
            fate, why = "refunded", "refunded in full at Stripe"
        elif payment is None:
            fate, why = "lost", "paid at Stripe, and no payment row of ours knows it"
        elif payment.status not in HELD_STATUSES:
            fate, why = "lost", f"paid at Stripe, but our payment is {payment.status}"
        elif (shortfall := _not_honoured(payment)) is not None:
            fate, why = "lost", f"paid at Stripe, but {shortfall}"
        else:
            fate, why = "access", "gives access"
        fates.append(
            ChargeFate(
                intent_id=intent["id"],
                amount=amount,
                currency=intent["currency"],
                customer=intent.get("customer"),
                payment=payment,
                fate=fate,  # type: ignore[arg-type]
                why=why,
            )
        )
    return fates


# --- the invariant -------------------------------------------------------------------------


def invariant_violations(*, view: StripeView, account_ids: Iterable[int], settled: bool) -> list[str]:
    """Return every way the accounts' billing disagrees with itself or with Stripe; [] if none.

    Always (at any moment with nothing running):
    - at most one live subscription per account;
    - no refunded total above the amount paid, ours (the payment's refunded amount, its
      succeeded refunds, the refunds holding part of it) or Stripe's (per charge);
    - no payment charged twice (two accepted, unrefunded charges for one payment row);
    - no expired or abandoned checkout whose page is still payable at Stripe, and no payable
      page without an open checkout of ours;
    - exactly one payment per renewal period: at most one per (subscription, period), and a
      paid one for every period a subscription was renewed into;
    - no plan change applied without its prorated charge paid (or nothing to pay).
    Once `settled` (reconciliation has applied everything Stripe knows):
    - every charge Stripe accepted gives access or was refunded in full (`charge_fates`);
    - our refunded amounts equal Stripe's;
    - no open checkout whose page Stripe has expired or completed, and no completed checkout
      whose page Stripe does not show as complete;
    - no plan change's charge kept (not refunded in full) unless the change was applied.
    """
    ids = list(account_ids)
    problems: list[str] = []
    subscriptions = list(Subscription.objects.filter(account_id__in=ids).select_related("tariff"))
    payments = list(
        Payment.objects.filter(subscription__account_id__in=ids).select_related("subscription__account")
    )
    checkouts = list(CheckoutSession.objects.filter(subscription__account_id__in=ids))

    live = Counter(s.account_id for s in subscriptions if s.status in LIVE_STATUSES)
    problems += [
        f"account {account} has {count} live subscriptions" for account, count in live.items() if count > 1
    ]

    problems += _refund_violations(view, payments, settled=settled)
    problems += _checkout_violations(view, checkouts, settled=settled)
    problems += _renewal_violations(subscriptions, payments)
    problems += _plan_change_violations(subscriptions, payments, settled=settled)

    fates = charge_fates(view, payments)
    per_payment = Counter(
        str(fate.payment.pk) for fate in fates if fate.payment is not None and fate.fate != "refunded"
    )
    problems += [
        f"payment {payment} was charged {count} times at Stripe (unrefunded)"
        for payment, count in per_payment.items()
        if count > 1
    ]
    if settled:
        problems += [f"lost {fate}" for fate in fates if fate.fate == "lost"]
    return problems


def _refund_violations(view: StripeView, payments: list[Payment], *, settled: bool) -> list[str]:
    problems = []
    totals = {
        row["payment_id"]: row
        for row in Refund.objects.filter(payment__in=[payment.pk for payment in payments])
        .values("payment_id")
        .annotate(
            succeeded=Sum("amount", filter=Q(status=RefundStatus.SUCCEEDED)),
            holding=Sum("amount", filter=Q(status__in=RESERVING_STATUSES)),
        )
    }
    for payment in payments:
        row = totals.get(payment.pk, {})
        for what, total in (
            ("refunded amount", payment.refunded_amount),
            ("succeeded refunds", row.get("succeeded") or 0),
            ("refunds holding it", row.get("holding") or 0),
        ):
            if total > payment.amount:
                problems.append(f"payment {payment.pk}: {what} {total} > amount {payment.amount}")
        intent = view.intents.get(payment.provider_payment_id or "")
        if settled and intent is not None and view.refunded(intent) != payment.refunded_amount:
            problems.append(
                f"payment {payment.pk}: refunded {payment.refunded_amount} with us, "
                f"{view.refunded(intent)} at Stripe"
            )
    for charge in view.charges.values():
        if charge["amount_refunded"] > charge["amount"]:
            problems.append(
                f"charge {charge['id']} refunded {charge['amount_refunded']} of {charge['amount']}"
            )
    return problems


def _checkout_violations(view: StripeView, checkouts: list[CheckoutSession], *, settled: bool) -> list[str]:
    problems = []
    ours = {checkout.provider_session_id: checkout for checkout in checkouts if checkout.provider_session_id}
    for session_id, checkout in ours.items():
        page = view.sessions.get(session_id)
        if page is None:
            problems.append(f"checkout {checkout.pk} ({checkout.status}): Stripe has no page {session_id}")
            continue
        if checkout.status == CheckoutStatus.EXPIRED and page["status"] == "open":
            problems.append(
                f"checkout {checkout.pk} is expired with us, but its page {session_id} is still payable"
            )
        elif checkout.status == CheckoutStatus.COMPLETE and page["status"] != "complete":
            problems.append(f"checkout {checkout.pk} is complete with us, but its page is {page['status']}")
        elif settled and checkout.status == CheckoutStatus.OPEN and page["status"] != "open":
            problems.append(
                f"checkout {checkout.pk} is open with us, but its page {session_id} is {page['status']}"
            )
    for session_id, page in view.sessions.items():
        row = ours.get(session_id)
        if page["status"] == "open" and (row is None or row.status != CheckoutStatus.OPEN):
            what = "no checkout row of ours" if row is None else f"checkout {row.pk} {row.status}"
            problems.append(f"page {session_id} is payable at Stripe, with {what}")
    return problems


def _renewal_violations(subscriptions: list[Subscription], payments: list[Payment]) -> list[str]:
    problems = []
    renewals: dict[Any, list[Payment]] = defaultdict(list)
    # Periods a payment other than a renewal started: the first one, and one an upgrade to
    # another period length starts at the change (its payment's period starts then).
    started: dict[Any, set[Any]] = defaultdict(set)
    for payment in payments:
        if payment.kind == PaymentKind.RENEWAL:
            renewals[(payment.subscription_id, payment.period_start)].append(payment)
        elif payment.status in (*HELD_STATUSES, PaymentStatus.REFUNDED) and payment.period_start is not None:
            started[payment.subscription_id].add(payment.period_start)
    for (subscription_id, period_start), rows in renewals.items():
        if len(rows) > 1:
            problems.append(
                f"subscription {subscription_id}: {len(rows)} renewal payments for {period_start}"
            )
    for subscription in subscriptions:
        start = subscription.current_period_start
        if start is None or not started[subscription.pk] or start in started[subscription.pk]:
            continue
        paid = [
            row
            for row in renewals.get((subscription.pk, start), [])
            if row.status in (*HELD_STATUSES, PaymentStatus.REFUNDED)
        ]
        if len(paid) != 1:
            problems.append(
                f"subscription {subscription.pk} was renewed into the period from {start:%Y-%m-%d %H:%M} "
                f"with {len(paid)} paid renewal payments for it"
            )
    return problems


def _plan_change_violations(
    subscriptions: list[Subscription], payments: list[Payment], *, settled: bool
) -> list[str]:
    """Return plan changes applied without their charge, or charged and neither applied nor refunded."""
    problems = []
    charges = {payment.idempotency_key: payment for payment in payments if payment.kind == PaymentKind.CHANGE}
    for change in PlanChange.objects.filter(subscription__in=[s.pk for s in subscriptions]):
        payment = charges.get(change.key)
        paid = payment is not None and payment.status in (*HELD_STATUSES, PaymentStatus.REFUNDED)
        if change.status == PlanChangeStatus.APPLIED and change.amount_due > 0 and not paid:
            state = payment.status if payment is not None else "missing"
            problems.append(f"plan change {change.key} applied, but its payment is {state}")
        # Paid for a change that could no longer be made: refunded in full once settled.
        held = payment is not None and payment.status in HELD_STATUSES
        if settled and held and change.status != PlanChangeStatus.APPLIED:
            problems.append(f"plan change {change.key} is {change.status}, yet its charge is kept")
    return problems
