"""Refunds take their row locks in the service's one order, so racing decisions never deadlock.

The order is account → subscription → checkout → payment → refund request → refund. Each
service is run once with its locks recorded (which tables each transaction locks, in order),
then the pairs support and Stripe can make race each other for many rounds, on threads.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.tests.roles import roles_restore, staff_member
from billing.models import SubscriptionStatus
from core.errors import DomainError
from notifications.models import EventType, OutboxEvent
from payments.gateways.base import GatewayEvent
from payments.models import (
    Payment,
    PaymentStatus,
    Refund,
    RefundReason,
    RefundRequest,
    RefundRequestStatus,
    RefundStatus,
    WebhookEvent,
)
from payments.services.refunds.approvals import refund_approve, refund_reject
from payments.services.refunds.provider_answers import refund_send
from payments.services.refunds.staff import refund_create
from payments.services.refunds.viewer_requests import (
    refund_request_approve,
    refund_request_create,
    refund_request_reject,
)
from payments.services.webhooks import webhook_event_process, webhook_event_record
from payments.tests.concurrency import run_concurrently
from payments.tests.refund_helpers import pay

pytestmark = pytest.mark.django_db(transaction=True)

R = RefundReason.REQUESTED_BY_CUSTOMER
ROUNDS = 20
LOCK_ORDER = (
    "accounts_billingaccount",
    "billing_subscription",
    "payments_checkoutsession",
    "payments_payment",
    "payments_refundrequest",
    "payments_refund",
)
_LOCKING_SELECT = re.compile(r"\bFOR (?:NO KEY )?UPDATE\b(?: OF (?P<of>[^;]*?))?(?: NOWAIT| SKIP LOCKED)?$")
_TABLE = re.compile(r'(?:FROM|JOIN) "(\w+)"')
_WRITE = re.compile(r'^(?:UPDATE|DELETE FROM) "(\w+)"')


def _locked_tables(sql: str) -> list[str]:
    """Return the tables of the order whose existing rows one statement locks."""
    if write := _WRITE.match(sql):
        tables = [write.group(1)]
    elif lock := _LOCKING_SELECT.search(sql):
        # Without OF, PostgreSQL locks the rows of every table the query joins.
        tables = re.findall(r'"(\w+)"', lock.group("of")) if lock.group("of") else _TABLE.findall(sql)
    else:
        return []
    return [table for table in dict.fromkeys(tables) if table in LOCK_ORDER]


@contextmanager
def recorded_locks() -> Iterator[list[list[list[str]]]]:
    """Record, per transaction, the tables each locking statement takes rows of, in order."""
    transactions: list[list[list[str]]] = []
    current: list[list[str]] = []

    def end_transaction() -> None:
        nonlocal current
        if current:
            transactions.append(current)
        current = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if tables := _locked_tables(sql):
            current.append(tables)
            if not connection.in_atomic_block:
                end_transaction()  # autocommit: the statement is its own transaction
        return execute(sql, params, many, context)

    commit, rollback = connection.commit, connection.rollback

    def committing() -> None:
        end_transaction()
        commit()

    def rolling_back() -> None:
        end_transaction()
        rollback()

    connection.commit, connection.rollback = committing, rolling_back  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(record):
            yield transactions
    finally:
        end_transaction()
        del connection.commit, connection.rollback


def assert_in_lock_order(transactions: list[list[list[str]]]) -> None:
    """Fail unless every transaction locks new tables only further down the order, one at a time."""
    for statements in transactions:
        held: set[str] = set()
        for tables in statements:
            new = [table for table in tables if table not in held]
            assert len(new) <= 1, f"one statement locks {new} at once (in no defined order): {statements}"
            if new and held:
                deepest = max(LOCK_ORDER.index(table) for table in held)
                assert LOCK_ORDER.index(new[0]) >= deepest, (
                    f"{new[0]} locked after {sorted(held)}: {statements}"
                )
            held.update(new)


@pytest.fixture
def staff() -> tuple[User, User]:
    """Return two Support members (the roles are made again: an earlier test's flush drops them)."""
    roles_restore()
    return staff_member("Support", "agent"), staff_member("Support", "lead")


def open_request(payment: Payment) -> RefundRequest:
    return refund_request_create(account=payment.subscription.account, payment_id=payment.pk, reason="Twice")


class TestEachServiceLocksInOrder:
    def test_a_refund_that_ends_access(self, viewer_client, stripe_sandbox, staff):
        payment = pay(viewer_client, stripe_sandbox)

        with recorded_locks() as transactions:
            refund = refund_create(payment=payment, amount=payment.amount, reason=R, created_by=staff[0])

        assert refund.status == RefundStatus.SUCCEEDED
        assert_in_lock_order(transactions)

    def test_approving_and_rejecting_refunds(self, viewer_client, stripe_sandbox, staff, settings):
        settings.REFUND_APPROVAL_THRESHOLD = 10000
        payment = pay(viewer_client, stripe_sandbox)
        agent, lead = staff
        first = refund_create(payment=payment, amount=20000, reason=R, created_by=agent)
        second = refund_create(payment=payment, amount=19900, reason=R, created_by=agent)

        with recorded_locks() as transactions:
            refund_reject(refund=first, rejected_by=lead)
            refund_approve(refund=second, approver=lead)

        assert_in_lock_order(transactions)

    def test_a_viewers_request_opened_approved_and_rejected(self, viewer_client, stripe_sandbox, staff):
        approved, rejected = (
            pay(viewer_client, stripe_sandbox, "alice"),
            pay(viewer_client, stripe_sandbox, "bob"),
        )

        with recorded_locks() as transactions:
            refund_request_approve(refund_request=open_request(approved), staff=staff[0])
            refund_request_reject(refund_request=open_request(rejected), staff=staff[0], note="No.")

        assert_in_lock_order(transactions)

    def test_charge_refunded_webhook(self, viewer_client, stripe_sandbox, staff):
        payment = pay(viewer_client, stripe_sandbox)
        refund = refund_pending_at_stripe(payment, stripe_sandbox, staff[0])
        event = charge_refunded_event(stripe_sandbox)

        with recorded_locks() as transactions:
            webhook_event_process(event_pk=event.pk)

        refund.refresh_from_db()
        assert refund.status == RefundStatus.SUCCEEDED
        assert_in_lock_order(transactions)


def refund_pending_at_stripe(payment: Payment, sandbox: Any, agent: User) -> Refund:
    """Refund a whole payment, ending access, whose answer from Stripe is lost: pending here, made there."""
    sandbox.post(
        "/faults", {"mode": "error", "path": "/v1/refunds", "method": "POST", "status": 500, "when": "after"}
    )
    refund = refund_create(payment=payment, amount=payment.amount, reason=R, created_by=agent)
    sandbox.delete("/faults")
    assert (refund.status, refund.provider_refund_id, refund.end_access) == (RefundStatus.PENDING, None, True)
    return refund


def charge_refunded_event(sandbox: Any) -> WebhookEvent:
    """Store the sandbox's latest `charge.refunded` event as if its webhook had arrived."""
    events = [e for e in sandbox.get("/objects", type="event")["data"] if e["type"] == "charge.refunded"]
    latest = max(events, key=lambda e: e["created"])
    stored, _ = webhook_event_record(
        provider="stripe",
        event=GatewayEvent(
            id=latest["id"],
            type=latest["type"],
            created=datetime.fromtimestamp(latest["created"], UTC),
            object_id=latest["data"]["object"]["id"],
            object=latest["data"]["object"],
        ),
    )
    return stored


def race(*racers: Callable[[], object]) -> list[str]:
    """Run the racers at once, each on its own thread and connection; return their outcomes.

    Each outcome is "done", or "refused" on a domain error; anything else (a deadlock)
    fails the test.
    """

    def run(index: int) -> str:
        try:
            racers[index]()
        except DomainError:
            return "refused"
        return "done"

    return run_concurrently(run, len(racers))


class TestRaces:
    def test_approving_and_rejecting_one_request_at_once_in_admin(self, viewer_client, stripe_sandbox, staff):
        clients = [Client(), Client()]
        for client, member in zip(clients, staff, strict=True):
            client.force_login(member)
        for round_ in range(ROUNDS):
            payment = pay(viewer_client, stripe_sandbox, f"viewer-{round_}")
            request = open_request(payment)
            approve, reject = (
                reverse("admin:payments_refundrequest_decide", args=[request.pk, decision])
                for decision in ("approve", "reject")
            )
            codes: list[int] = []

            # The test client raises whatever the view raised: a deadlock fails the test.
            race(
                lambda: codes.append(clients[0].post(approve, {"note": ""}).status_code),  # noqa: B023
                lambda: codes.append(clients[1].post(reject, {"note": "No."}).status_code),  # noqa: B023
            )

            assert codes == [302, 302]
            request.refresh_from_db()
            refunds = list(Refund.objects.filter(payment=payment).values_list("pk", "status"))
            if request.status == RefundRequestStatus.APPROVED:
                assert refunds == [(request.refund_id, RefundStatus.SUCCEEDED)]
            else:
                assert (request.status, refunds) == (RefundRequestStatus.REJECTED, [])

    def test_approving_and_rejecting_one_request_at_once(self, viewer_client, stripe_sandbox, staff):
        agent, lead = staff
        for round_ in range(ROUNDS):
            payment = pay(viewer_client, stripe_sandbox, f"viewer-{round_}")
            request = open_request(payment)

            outcomes = race(
                lambda: refund_request_approve(refund_request=request, staff=agent),  # noqa: B023
                lambda: refund_request_reject(refund_request=request, staff=lead, note="No."),  # noqa: B023
            )

            assert sorted(outcomes) == ["done", "refused"]
            request.refresh_from_db()
            refunds = list(Refund.objects.filter(payment=payment).values_list("pk", "status"))
            if outcomes[0] == "done":
                assert request.status == RefundRequestStatus.APPROVED
                assert refunds == [(request.refund_id, RefundStatus.SUCCEEDED)]
            else:
                assert (request.status, refunds) == (RefundRequestStatus.REJECTED, [])

    def test_two_staff_refunds_of_one_payment_at_once(self, viewer_client, stripe_sandbox, staff):
        def refund(payment: Payment, member: User) -> Refund:
            return refund_create(
                payment=payment,
                amount=10000,
                reason=R,
                created_by=member,
                end_access=True,
                request_key=uuid.uuid4(),
            )

        for round_ in range(ROUNDS):
            payment = pay(viewer_client, stripe_sandbox, f"viewer-{round_}")

            outcomes = race(lambda: refund(payment, staff[0]), lambda: refund(payment, staff[1]))  # noqa: B023

            assert outcomes == ["done", "done"]
            payment.refresh_from_db()
            assert (payment.status, payment.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, 20000)
            assert payment.subscription.status == SubscriptionStatus.CANCELED
            assert sent_events(payment, EventType.PAYMENT_REFUNDED) == 2
            assert sent_events(payment, EventType.ACCESS_REVOKED) == 1

    def test_a_refund_racing_its_charge_refunded_webhook(self, viewer_client, stripe_sandbox, staff):
        for round_ in range(ROUNDS // 2):
            payment = pay(viewer_client, stripe_sandbox, f"viewer-{round_}")
            refund = refund_pending_at_stripe(payment, stripe_sandbox, staff[0])
            event = charge_refunded_event(stripe_sandbox)

            outcomes = race(
                lambda: refund_send(refund=refund, actor=staff[0]),  # noqa: B023
                lambda: webhook_event_process(event_pk=event.pk),  # noqa: B023
            )

            assert outcomes == ["done", "done"]
            refund.refresh_from_db()
            payment.refresh_from_db()
            assert (refund.status, Refund.objects.filter(payment=payment).count()) == (
                RefundStatus.SUCCEEDED,
                1,
            )
            assert (payment.status, payment.refunded_amount) == (PaymentStatus.REFUNDED, payment.amount)
            assert payment.subscription.status == SubscriptionStatus.CANCELED
            assert sent_events(payment, EventType.PAYMENT_REFUNDED) == 1
            assert sent_events(payment, EventType.ACCESS_REVOKED) == 1


def sent_events(payment: Payment, event_type: str) -> int:
    """Return how many events of a type the payment's subscription published."""
    return OutboxEvent.objects.filter(subscription_id=payment.subscription_id, type=event_type).count()
