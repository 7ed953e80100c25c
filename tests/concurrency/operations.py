"""The write operations one viewer or one payment can be subject to, and the states they start from.

Every operation drives the real entry point, as production reaches it:
- a viewer's request: the API through `APIClient`, with the viewer's JWT;
- support's action in admin: the service function the admin page calls;
- Stripe's word: a signed event posted to the webhook endpoint, then handled by the service its
  Celery task calls; or the viewer paying the hosted page (the sandbox's control API pays it
  by the same code path as its form);
- a job: the service its Celery task calls.

An operation never raises: `perform` returns an `Outcome` saying whether it was carried out,
refused by a business rule (a `DomainError`, a 4xx answer), or failed (a 5xx answer, any other
exception; a deadlock or a lock wait that timed out is flagged as such).

Each operation names the starting states it applies to; `scene_build` builds one such state
for a new viewer, through the same entry points (a subscribe through the API, a page paid at
the sandbox, ...), so that the rows and Stripe's objects agree as they would in production.
"""

import json
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import BillingAccount
from accounts.tokens import issue_token
from billing.models import Subscription, SubscriptionStatus
from billing.periods import add_months
from billing.services import subscription_extend
from core.errors import DomainError
from payments.gateways.stripe_events import event_fact_from_stripe
from payments.gateways.stripe_mapping import event_from_stripe
from payments.models import (
    CheckoutSession,
    Payment,
    Provider,
    RefundReason,
    RefundRequest,
    WebhookEvent,
    WebhookEventStatus,
)
from payments.services.checkout import checkout_sync
from payments.services.customers import customer_for
from payments.services.reconciliation import reconcile_pending_payments
from payments.services.refunds.staff import refund_create
from payments.services.refunds.viewer_requests import refund_request_approve, refund_request_reject
from payments.services.renewals import renewal_run
from payments.services.webhooks import EventProcessingFailed, webhook_event_process
from payments.tests.sandbox_helpers import Control
from payments.tests.stripe_signing import sign

SUBSCRIPTIONS = "/api/v1/subscriptions/"
WEBHOOK = "/api/v1/webhooks/stripe/"
CARD = "4242424242424242"
# The tariffs of the catalogue: A, another one B (a viewer changing their mind, or upgrading
# from A: the same period at a higher price) and a cheaper one C (a downgrade from A).
TARIFF_A = "monthly"
TARIFF_B = "monthly-hd"
TARIFF_C = "monthly-basic"
EXTENSION_DAYS = 7
# A bound on the wait for the other operation to be ready (it only prepares: milliseconds).
GO_TIMEOUT_SECONDS = 30
ROOT = Path(settings.BASE_DIR)
T = TypeVar("T")


# --- what an operation did ---------------------------------------------------------------


class Refused(Exception):
    """The API refused the request with a 4xx: a business rule said no."""


class Failed(Exception):
    """The entry point failed: a 5xx answer, or a job that recorded an error."""


@dataclass(frozen=True)
class Outcome:
    """What one operation did: carried out (`done`), refused by a rule, or failed."""

    operation: str
    verdict: Literal["done", "refused", "failed"]
    detail: str = ""
    deadlock: bool = False

    def __str__(self) -> str:
        flag = " [DEADLOCK]" if self.deadlock else ""
        return f"{self.operation}: {self.verdict}{flag}: {self.detail}"


def _is_deadlock(text: str) -> bool:
    return "deadlock detected" in text.lower() or "DeadlockDetected" in text


def _is_lock_timeout(text: str) -> bool:
    return "lock timeout" in text.lower() or "LockNotAvailable" in text


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def traceback_top(exc: BaseException, frames: int = 4) -> str:
    """Return the innermost frames of our own code (not the libraries') the exception went through."""
    ours = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.startswith(str(ROOT))
        and "/.venv/" not in frame.filename
        and "/tests/concurrency/" not in frame.filename
    ]
    return " <- ".join(
        f"{Path(frame.filename).relative_to(ROOT)}:{frame.lineno} {frame.name}"
        for frame in reversed(ours[-frames:])
    )


def _failure(name: str, exc: BaseException) -> Outcome:
    text = " / ".join(
        f"{type(link).__name__}: {str(link).strip().splitlines()[0] if str(link).strip() else ''}"
        for link in _chain(exc)
    )
    top = traceback_top(exc)
    detail = f"{text} at {top}" if top else text
    if _is_lock_timeout(text):
        detail = f"LOCK WAIT TIMED OUT (a hang): {detail}"
    return Outcome(name, "failed", detail, deadlock=_is_deadlock(text))


# --- the starting states ----------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """What every operation of a test shares: the sandbox, and the staff members who act."""

    sandbox: Control
    support: User
    other_support: User


@dataclass
class Scene:
    """One viewer in a starting state, and the ids the operations act on."""

    state: str
    user_id: str
    account_id: int
    subscription_id: uuid.UUID | None = None
    checkout_id: uuid.UUID | None = None
    provider_session_id: str | None = None
    payment_id: uuid.UUID | None = None
    payment_amount: int = 0
    # The period end support's extension form showed (it refuses a period end that moved since).
    period_end: datetime | None = None
    refund_request_id: uuid.UUID | None = None
    # The `checkout.session.completed` event Stripe recorded for the paid page, as it posts it.
    completed_event: bytes = b""


class ThreadClient(APIClient):
    """An API client that re-raises the exceptions of its own requests only.

    Django's test client listens to the process-wide `got_request_exception` signal while a
    request runs: with two requests at once, each client would also re-raise the exception of
    the other thread's request, and a deadlock would seem to hit both operations.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._thread = threading.get_ident()

    def store_exc_info(self, **kwargs: Any) -> None:
        if threading.get_ident() == self._thread:
            super().store_exc_info(**kwargs)


def _known(value: T | None) -> T:
    """Return an id the scene's state has (an operation that needs it applies to such states only)."""
    assert value is not None, "this state has no such row"
    return value


def viewer_client(user_id: str) -> APIClient:
    """Return an API client authenticated as a cinema user (in the calling thread)."""
    client = ThreadClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=user_id)}")
    return client


def _ok(response: Any, *expected: int) -> Any:
    assert response.status_code in expected, (response.status_code, response.content[:500])
    return response.json()


def _new_account(state: str, world: World, user_id: str) -> Scene:
    # A viewer's first request opens their account.
    _ok(viewer_client(user_id).get("/api/v1/access/"), 200)
    return Scene(state=state, user_id=user_id, account_id=BillingAccount.objects.get(user_id=user_id).pk)


def _with_customer(state: str, world: World, user_id: str) -> Scene:
    scene = _new_account(state, world, user_id)
    customer_for(account=BillingAccount.objects.get(pk=scene.account_id), provider=Provider.STRIPE)
    return scene


def _pending(state: str, world: World, user_id: str) -> Scene:
    # The subscribe is the viewer's first request: it opens the account.
    body = _ok(viewer_client(user_id).post(SUBSCRIPTIONS, {"tariff": TARIFF_A}, format="json"), 201)
    checkout = CheckoutSession.objects.select_related("payment").get(pk=body["checkout"]["id"])
    assert checkout.provider_session_id and checkout.payment is not None
    scene = Scene(state=state, user_id=user_id, account_id=BillingAccount.objects.get(user_id=user_id).pk)
    scene.subscription_id = checkout.subscription_id
    scene.checkout_id = checkout.pk
    scene.provider_session_id = checkout.provider_session_id
    scene.payment_id = checkout.payment.pk
    scene.payment_amount = checkout.payment.amount
    return scene


def _page_paid(state: str, world: World, user_id: str) -> Scene:
    scene = _pending(state, world, user_id)
    assert scene.provider_session_id is not None
    assert world.sandbox.pay(scene.provider_session_id, CARD)["outcome"] == "succeeded"
    events = [
        event
        for event in world.sandbox.objects("event")
        if event["type"] == "checkout.session.completed"
        and event["data"]["object"]["id"] == scene.provider_session_id
    ]
    assert len(events) == 1, events
    scene.completed_event = json.dumps(events[0]).encode()
    return scene


def _build_events_delivered(world: World) -> None:
    """Record the events Stripe sent so far as delivered and handled, as their webhooks would be.

    Their handlers only re-read what the build already applied (the success page's sync), so
    handling them again in every settle would change nothing and cost a third of a round.
    """
    now = timezone.now()
    WebhookEvent.objects.bulk_create(
        [
            WebhookEvent(
                event_id=event["id"],
                type=event["type"],
                object_id=event["data"]["object"].get("id") or "",
                provider_created_at=datetime.fromtimestamp(event["created"], UTC),
                payload=event["data"]["object"],
                status=WebhookEventStatus.PROCESSED,
                attempts=1,
                processed_at=now,
            )
            for event in world.sandbox.objects("event")
            if event_fact_from_stripe(event_from_stripe(event)) is not None
        ],
        ignore_conflicts=True,
    )


def _active(state: str, world: World, user_id: str) -> Scene:
    scene = _pending(state, world, user_id)
    assert scene.provider_session_id is not None
    assert world.sandbox.pay(scene.provider_session_id, CARD)["outcome"] == "succeeded"
    # What the success page's first poll does.
    checkout_sync(provider_session_id=scene.provider_session_id)
    subscription = Subscription.objects.get(pk=_known(scene.subscription_id))
    assert subscription.status == SubscriptionStatus.ACTIVE, subscription.status
    scene.period_end = subscription.current_period_end
    _build_events_delivered(world)
    return scene


def _canceled(state: str, world: World, user_id: str) -> Scene:
    scene = _active(state, world, user_id)
    body = _ok(viewer_client(user_id).post(f"{SUBSCRIPTIONS}{scene.subscription_id}/cancel/"), 200)
    assert body["cancel_at_period_end"] is True
    return scene


def _due(state: str, world: World, user_id: str) -> Scene:
    """An active subscription paid a month ago, whose period ended a minute ago: its renewal is due."""
    scene = _active(state, world, user_id)
    end = timezone.now() - timedelta(minutes=1)
    start = add_months(end, -1)
    Subscription.objects.filter(pk=_known(scene.subscription_id)).update(
        billing_anchor=start, current_period_start=start, current_period_end=end
    )
    Payment.objects.filter(pk=_known(scene.payment_id)).update(
        period_start=start, period_end=end, paid_at=start
    )
    scene.period_end = end
    return scene


def _refund_requested(state: str, world: World, user_id: str) -> Scene:
    scene = _active(state, world, user_id)
    body = _ok(
        viewer_client(user_id).post(
            f"/api/v1/payments/{scene.payment_id}/refund-request/",
            {"reason": "I meant the other tariff."},
            format="json",
        ),
        201,
    )
    scene.refund_request_id = uuid.UUID(body["id"])
    return scene


@dataclass(frozen=True)
class State:
    name: str
    description: str
    build: Callable[[str, World, str], Scene]


STATES: dict[str, State] = {
    state.name: state
    for state in (
        State("new", "a new account (no Stripe customer yet)", _new_account),
        State("customer", "an account with a Stripe customer", _with_customer),
        State("pending", "a pending subscription to A with an open page", _pending),
        State(
            "page_paid", "a pending subscription whose page was paid at Stripe, nothing settled", _page_paid
        ),
        State("active", "an active subscription, paid, card saved, autopay on", _active),
        State("canceled", "an active subscription canceled at its period end", _canceled),
        State("due", "an active subscription whose period is over: renewal due", _due),
        State(
            "refund_requested",
            "an active subscription with a viewer's open refund request",
            _refund_requested,
        ),
    )
}


def scene_build(state: str, world: World, user_id: str) -> Scene:
    """Return a new viewer `user_id` in a starting state."""
    return STATES[state].build(state, world, user_id)


# --- the operations ---------------------------------------------------------------------


def _answer(response: Any) -> str:
    """Return an API answer's status; raise `Refused` for a 4xx and `Failed` for a 5xx."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    if status >= 500:
        raise Failed(f"HTTP {status} {error.get('code', '')}: {error.get('message', '')}")
    if status >= 400:
        raise Refused(f"HTTP {status} {error.get('code', '')}")
    return f"HTTP {status}"


# Each operation is two steps: `prepare`, in the operation's own thread before the two are
# released together (what was there before the click: the admin page's form with the rows it
# shows, the client with its token, an open database connection), then `run`, the write itself.
Prepare = Callable[[Scene, World], Any]
Run = Callable[[Scene, World, Any], str]


def _client(scene: Scene, world: World) -> APIClient:
    return viewer_client(scene.user_id)


def _anonymous(scene: Scene, world: World) -> APIClient:
    return ThreadClient()


def _nothing(scene: Scene, world: World) -> None:
    return None


def _subscribe(tariff: str) -> Run:
    def run(scene: Scene, world: World, client: APIClient) -> str:
        return _answer(client.post(SUBSCRIPTIONS, {"tariff": tariff}, format="json"))

    return run


def _subscription_action(action: str, payload: dict[str, Any] | None = None) -> Run:
    def run(scene: Scene, world: World, client: APIClient) -> str:
        url = f"{SUBSCRIPTIONS}{scene.subscription_id}/{action}/"
        return _answer(client.post(url, payload or {}, format="json"))

    return run


def _change_plan(tariff: str) -> Run:
    def run(scene: Scene, world: World, client: APIClient) -> str:
        url = f"{SUBSCRIPTIONS}{scene.subscription_id}/change/"
        response = client.post(url, {"tariff": tariff}, format="json")
        answer = _answer(response)
        return f"{answer} {response.json().get('status', '')}".strip()

    return run


def _poll_checkout(scene: Scene, world: World, client: APIClient) -> str:
    # The success page polls without credentials: the checkout id is its key.
    return _answer(client.get(f"/api/v1/checkouts/{scene.checkout_id}/"))


def _webhook_completed(scene: Scene, world: World, client: APIClient) -> str:
    body = scene.completed_event
    answer = _answer(
        client.post(
            WEBHOOK,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body, settings.STRIPE_WEBHOOK_SECRET),
        )
    )
    # What the Celery task the endpoint queued does (process_webhook_event).
    event = WebhookEvent.objects.get(event_id=json.loads(body)["id"])
    try:
        webhook_event_process(event_pk=event.pk)
    except EventProcessingFailed as exc:
        event.refresh_from_db()
        raise Failed(f"event {event.event_id} failed: {event.last_error}") from exc
    event.refresh_from_db()
    return f"{answer}, event {event.status}"


def _pay_page(scene: Scene, world: World, _: None) -> str:
    assert scene.provider_session_id is not None
    result = world.sandbox.pay(scene.provider_session_id, CARD)
    if result.get("outcome") == "succeeded":
        return "paid"
    if result.get("outcome") == "unavailable":
        raise Refused(f"the page is no longer payable: {result.get('message')}")
    raise Failed(f"paying the page: {result}")


def _renewal(scene: Scene, world: World, _: None) -> str:
    assert scene.subscription_id is not None
    return renewal_run(subscription_id=scene.subscription_id).value


def _reconcile(scene: Scene, world: World, _: None) -> str:
    # Everything pending counts as overdue: the job's threshold is a matter of minutes, and a
    # round lasts well under one.
    run = reconcile_pending_payments(older_than=timedelta(0))
    if run.error:
        raise Failed(f"reconciliation run recorded an error: {run.error}")
    return f"run {run.status}: examined {run.examined}, fixed {run.fixed}"


def _payment(scene: Scene, world: World) -> Payment:
    return Payment.objects.get(pk=_known(scene.payment_id))


def _staff_refund(scene: Scene, world: World, payment: Payment) -> str:
    # The admin's refund form: the whole payment, access per the default rule (ended), a form
    # token of its own (two agents, not one double click).
    refund = refund_create(
        payment=payment,
        amount=scene.payment_amount,
        reason=RefundReason.SERVICE_PROBLEM,
        comment="pairwise test",
        created_by=world.support,
        request_key=uuid.uuid4(),
    )
    return f"refund {refund.status}"


def _refund_request(scene: Scene, world: World, client: APIClient) -> str:
    return _answer(
        client.post(
            f"/api/v1/payments/{scene.payment_id}/refund-request/",
            {"reason": "I did not mean to pay."},
            format="json",
        )
    )


def _the_request(scene: Scene, world: World) -> RefundRequest:
    return RefundRequest.objects.get(pk=_known(scene.refund_request_id))


def _approve_request(scene: Scene, world: World, request: RefundRequest) -> str:
    refund = refund_request_approve(refund_request=request, staff=world.support, note="approved")
    return f"refund {refund.status}"


def _reject_request(scene: Scene, world: World, request: RefundRequest) -> str:
    rejected = refund_request_reject(
        refund_request=request, staff=world.other_support, note="outside the rules"
    )
    return f"request {rejected.status}"


def _subscription(scene: Scene, world: World) -> Subscription:
    return Subscription.objects.get(pk=_known(scene.subscription_id))


def _extend(scene: Scene, world: World, subscription: Subscription) -> str:
    # The extension form as support sent it: with the period end it showed.
    extended = subscription_extend(
        subscription=subscription,
        days=EXTENSION_DAYS,
        actor=world.support,
        reason="goodwill",
        expected_period_end=scene.period_end,
    )
    return f"period end {extended.current_period_end:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    states: frozenset[str]
    prepare: Prepare
    run: Run


_CATALOGUE = (
    Operation(
        "subscribe_a",
        "POST /subscriptions/ for tariff A",
        frozenset({"new", "customer", "pending", "page_paid"}),
        _client,
        _subscribe(TARIFF_A),
    ),
    Operation(
        "subscribe_b",
        "POST /subscriptions/ for tariff B (another tariff: replaces an open page)",
        frozenset({"new", "customer", "pending", "page_paid", "active"}),
        _client,
        _subscribe(TARIFF_B),
    ),
    Operation(
        "cancel",
        "POST /subscriptions/{id}/cancel/",
        frozenset({"pending", "page_paid", "active", "canceled", "due", "refund_requested"}),
        _client,
        _subscription_action("cancel"),
    ),
    Operation(
        "resume",
        "POST /subscriptions/{id}/resume/",
        frozenset({"canceled"}),
        _client,
        _subscription_action("resume"),
    ),
    Operation(
        "autopay_off",
        "POST /subscriptions/{id}/autopay/ {enabled: false}",
        frozenset({"pending", "active", "due"}),
        _client,
        _subscription_action("autopay", {"enabled": False}),
    ),
    Operation(
        "autopay_on",
        "POST /subscriptions/{id}/autopay/ {enabled: true}",
        frozenset({"canceled"}),
        _client,
        _subscription_action("autopay", {"enabled": True}),
    ),
    Operation(
        "poll_checkout",
        "GET /checkouts/{id}/ (the success page; re-reads the session from Stripe)",
        frozenset({"pending", "page_paid"}),
        _anonymous,
        _poll_checkout,
    ),
    Operation(
        "webhook_completed",
        "checkout.session.completed posted signed to /webhooks/stripe/, then handled (the task's service)",
        frozenset({"page_paid"}),
        _anonymous,
        _webhook_completed,
    ),
    Operation(
        "pay_page",
        "the viewer pays the open page with 4242 at the sandbox",
        frozenset({"pending"}),
        _nothing,
        _pay_page,
    ),
    Operation(
        "renewal",
        "payments.services.renewals.renewal_run (the renew_subscription task)",
        frozenset({"due"}),
        _nothing,
        _renewal,
    ),
    Operation(
        "reconcile",
        "payments.services.reconciliation.reconcile_pending_payments (the beat job)",
        frozenset({"pending", "page_paid", "due"}),
        _nothing,
        _reconcile,
    ),
    Operation(
        "staff_refund",
        "refund_create of the whole payment by support (refund_send inside)",
        frozenset({"active", "due", "refund_requested"}),
        _payment,
        _staff_refund,
    ),
    Operation(
        "refund_request",
        "POST /payments/{id}/refund-request/",
        frozenset({"active", "refund_requested"}),
        _client,
        _refund_request,
    ),
    Operation(
        "approve_request",
        "refund_request_approve by support (refunds what is left)",
        frozenset({"refund_requested"}),
        _the_request,
        _approve_request,
    ),
    Operation(
        "reject_request",
        "refund_request_reject by another support member",
        frozenset({"refund_requested"}),
        _the_request,
        _reject_request,
    ),
    Operation(
        "extend",
        "billing.services.subscription_extend by 7 days (support's goodwill form)",
        frozenset({"active", "canceled", "due"}),
        _subscription,
        _extend,
    ),
    # Plan changes lock subscription → payment and charge the saved card off-session under the
    # subscription's lock. In `due` and `canceled` they are refused unless the other operation
    # (a renewal or an extension, a resume) makes them possible first; in `page_paid` unless
    # the settlement activates the subscription first.
    Operation(
        "upgrade",
        "POST /subscriptions/{id}/change/ to B (same period, dearer): the prorated charge now",
        frozenset({"page_paid", "active", "canceled", "due", "refund_requested"}),
        _client,
        _change_plan(TARIFF_B),
    ),
    Operation(
        "downgrade",
        "POST /subscriptions/{id}/change/ to C (cheaper): scheduled for the period end",
        frozenset({"active", "canceled", "due"}),
        _client,
        _change_plan(TARIFF_C),
    ),
)
OPERATIONS: dict[str, Operation] = {operation.name: operation for operation in _CATALOGUE}


def operations_for(state: str) -> list[Operation]:
    """Return the operations that apply to a starting state, in catalogue order."""
    return [operation for operation in _CATALOGUE if state in operation.states]


def perform(name: str, scene: Scene, world: World, *, go: threading.Barrier | None = None) -> Outcome:
    """Run one operation on a scene and say how it went; never raise.

    With `go`, the operation first prepares (opens its database connection, loads what its
    form or client holds), then waits on the barrier, so that the writes of the operations
    sharing it start together rather than a connection set-up apart.
    """
    operation = OPERATIONS[name]
    prepared: Any = None
    try:
        try:
            connection.ensure_connection()
            prepared = operation.prepare(scene, world)
        finally:
            # Even when preparing failed: the other operation must not wait for this one forever.
            if go is not None:
                go.wait(timeout=GO_TIMEOUT_SECONDS)
        return Outcome(name, "done", operation.run(scene, world, prepared))
    except (DomainError, Refused) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, DomainError):
            detail = f"{exc.code} ({exc.status_code})"
        return Outcome(name, "refused", detail)
    except Exception as exc:
        return _failure(name, exc)
