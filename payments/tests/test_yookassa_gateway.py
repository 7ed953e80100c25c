"""The YooKassa gateway against the offline YooKassa sandbox running as its own process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from payments.gateways.base import (
    CheckoutChanged,
    CreatedRange,
    PaymentChanged,
    PaymentMethodSaved,
    RefundChanged,
    RefundRequest,
)
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    PermanentGatewayError,
    RateLimited,
    TemporaryGatewayError,
)
from payments.tests.sandbox_helpers import WebhookReceiver, http, read_form, wait_until
from payments.tests.yookassa_helpers import (
    VIEWER_EMAIL,
    YooKassaProcess,
    checkout_request,
    fresh,
    make_gateway,
    renewal,
    run_sandbox_process,
)


@pytest.fixture(scope="module")
def yookassa_process() -> Iterator[YooKassaProcess]:
    """Run one YooKassa sandbox process for this module."""
    yield from run_sandbox_process()


@pytest.fixture
def yookassa(yookassa_process: YooKassaProcess) -> YooKassaProcess:
    """Return the module's sandbox process, reset."""
    return fresh(yookassa_process)


SUCCEEDS = "5555 5555 5555 4444"
THREE_D_SECURE = "5555 5555 5555 4477"
CARD_EXPIRED = "5555 5555 5555 4543"


def _paid_first_payment(sandbox: YooKassaProcess) -> str:
    gateway = make_gateway(sandbox)
    session = gateway.create_checkout_session(checkout_request())
    sandbox.pay(session.id, SUCCEEDS, expect=200)
    payment = gateway.retrieve_payment(session.id)
    assert payment.payment_method_id
    return payment.payment_method_id


def _day() -> CreatedRange:
    now = datetime.now(UTC)
    return CreatedRange(start=now - timedelta(hours=1), end=now + timedelta(hours=1))


def test_first_payment_paid_on_the_confirmation_page_saves_the_card(yookassa):
    gateway = make_gateway(yookassa)

    session = gateway.create_checkout_session(checkout_request())
    status, _, html = http("GET", session.url)
    page = read_form(html)
    answer, headers, _ = http(
        "POST", session.url, form={"card_number": SUCCEEDS, "exp": "12 / 30", "cvc": "123"}
    )
    paid = gateway.retrieve_checkout_session(session.id)
    payment = gateway.retrieve_payment(session.id)

    assert (
        f"orderId={session.id}" in session.url and session.status == "open" and session.amount_total == 39900
    )
    assert status == 200 and {"card_number", "exp", "cvc"} <= set(page.inputs) and "Pay" in page.buttons
    assert answer == 303 and headers["Location"] == "http://127.0.0.1:9/checkout/result/"
    assert (paid.status, paid.payment_status, paid.payment_intent_id, paid.url) == (
        "complete",
        "paid",
        session.id,
        None,
    )
    assert (
        paid.metadata == {"checkout_id": "1", "payment_id": "1"}
        and paid.client_reference_id == "subscription-1"
    )
    assert payment.status == "succeeded" and payment.amount == 39900 and payment.currency == "RUB"
    assert payment.payment_method_id and payment.card is not None and payment.card.last4 == "4444"
    assert gateway.retrieve_payment_method(payment.payment_method_id).last4 == "4444"
    _, raw = yookassa.api("GET", f"/payments/{session.id}")
    assert raw["receipt_registration"] == "succeeded"


def test_the_checkout_request_carries_a_54fz_receipt_and_our_key(yookassa):
    gateway = make_gateway(yookassa)

    session = gateway.create_checkout_session(checkout_request(key="checkout:receipt"))
    sent = yookassa.requests(method="POST", path="/v3/payments")
    _, raw = yookassa.api("GET", f"/payments/{session.id}")

    assert [request["idempotency_key"] for request in sent] == ["checkout:receipt"]
    assert raw["receipt_registration"] == "pending" and raw["confirmation"]["type"] == "redirect"


def test_off_session_renewal_charges_the_saved_method(yookassa):
    method_id = _paid_first_payment(yookassa)
    gateway = make_gateway(yookassa)

    charged = gateway.charge_off_session(renewal(method_id))

    assert (
        charged.status == "succeeded" and charged.amount == 39900 and charged.payment_method_id == method_id
    )
    assert charged.metadata == {"payment_id": "2"}
    assert len([c for c in gateway.list_charges(_day()) if c.status == "succeeded"]) == 2


def test_a_decline_card_on_the_page_ends_the_checkout_with_its_reason(yookassa):
    gateway = make_gateway(yookassa)
    session = gateway.create_checkout_session(checkout_request())

    outcome = yookassa.pay(session.id, CARD_EXPIRED, expect=402)
    page = gateway.retrieve_checkout_session(session.id)
    payment = gateway.retrieve_payment(session.id)

    assert outcome["outcome"] == "declined" and outcome["message"] == "card_expired"
    assert page.status == "expired" and page.payment_status == "unpaid"
    assert payment.status == "requires_payment_method" and payment.decline_code == "card_expired"
    assert gateway.decline_reason(payment.decline_code) == "card_expired"


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("card_expired", "hard"), ("permission_revoked", "hard"), ("insufficient_funds", "soft")],
)
def test_an_off_session_decline_raises_card_declined_of_its_kind(yookassa, reason, kind):
    method_id = _paid_first_payment(yookassa)
    yookassa.control("POST", f"/payment_methods/{method_id}", {"decline_reason": reason})

    with pytest.raises(CardDeclined) as declined:
        make_gateway(yookassa).charge_off_session(renewal(method_id))

    assert (declined.value.decline_code, declined.value.kind) == (reason, kind)


def test_three_d_secure_on_the_page_then_authentication_required_off_session(yookassa):
    gateway = make_gateway(yookassa)
    session = gateway.create_checkout_session(checkout_request())

    answer, headers, _ = http(
        "POST", session.url, form={"card_number": THREE_D_SECURE, "exp": "12/30", "cvc": "123"}
    )
    step, _, html = http("GET", yookassa.base_url + headers["Location"])
    done, _, _ = http("POST", yookassa.base_url + headers["Location"], form={"action": "complete"})
    payment = gateway.retrieve_payment(session.id)

    assert answer == 303 and headers["Location"] == f"/payments/3ds?orderId={session.id}"
    assert step == 200 and "Complete authentication" in read_form(html).buttons
    assert done == 303 and payment.status == "succeeded"
    with pytest.raises(AuthenticationRequired):
        gateway.charge_off_session(renewal(str(payment.payment_method_id)))


def test_a_card_check_holds_one_rouble_saves_the_card_and_is_released(yookassa):
    gateway = make_gateway(yookassa)
    session = gateway.create_checkout_session(checkout_request(mode="setup", key="card-check:1"))

    yookassa.pay(session.id, SUCCEEDS, expect=200)
    held = gateway.retrieve_checkout_session(session.id)
    setup = gateway.retrieve_payment_method_setup(session.id)
    released = gateway.cancel_payment(session.id, "card-check-release:1")
    after = gateway.retrieve_checkout_session(session.id)
    _, raw = yookassa.api("GET", f"/payments/{session.id}")

    assert raw["amount"] == {"value": "1.00", "currency": "RUB"} and raw["status"] == "canceled"
    assert (held.status, held.payment_status, held.setup_intent_id) == (
        "complete",
        "no_payment_required",
        session.id,
    )
    assert setup.status == "succeeded" and setup.payment_method_id == session.id
    assert released.status == "canceled" and (after.status, after.payment_status) == (
        "complete",
        "no_payment_required",
    )
    assert [c.status for c in gateway.list_charges(_day())] == ["failed"]


def test_a_held_payment_is_captured_once(yookassa):
    gateway = make_gateway(yookassa)
    session = gateway.create_checkout_session(checkout_request(mode="setup", key="hold:1"))
    yookassa.pay(session.id, SUCCEEDS, expect=200)

    captured = gateway.capture_payment(session.id, "capture:1")
    again = gateway.capture_payment(session.id, "capture:1")

    assert captured.status == again.status == "succeeded" and captured.amount == 100
    assert len(yookassa.requests(path=f"/v3/payments/{session.id}/capture")) == 2


def test_refunds_partial_then_the_rest_with_receipts(yookassa):
    method_id = _paid_first_payment(yookassa)
    gateway = make_gateway(yookassa)
    payment = gateway.charge_off_session(renewal(method_id))

    def refund(amount, key):
        return gateway.create_refund(
            RefundRequest(
                payment_intent_id=payment.id,
                amount=amount,
                reason="goodwill",
                metadata={"refund_id": key},
                idempotency_key=f"refund:{key}",
                receipt_email=VIEWER_EMAIL,
                receipt_item_name="Monthly",
            )
        )

    partial = refund(10000, "1")
    rest = refund(None, "2")
    _, raw = yookassa.api("GET", f"/refunds/{rest.id}")

    assert (partial.status, partial.amount, partial.payment_intent_id) == ("succeeded", 10000, payment.id)
    assert rest.amount == 29900 and raw["receipt_registration"] == "succeeded"
    assert gateway.retrieve_refund(partial.id).metadata == {"refund_id": "1"}
    assert sorted(r.amount for r in gateway.list_refunds(_day())) == [10000, 29900]
    with pytest.raises(PermanentGatewayError) as refused:
        refund(None, "3")
    assert refused.value.code == "charge_already_refunded"


def test_settlement_lines_take_the_fee_from_income_amount(yookassa):
    method_id = _paid_first_payment(yookassa)
    gateway = make_gateway(yookassa)

    lines = gateway.list_settlement_lines(_day())

    assert [(line.kind, line.amount, line.fee, line.net) for line in lines] == [
        ("payment", 39900, 1396, 38504)
    ]
    assert method_id and gateway.retrieve_balance() == []


@pytest.mark.parametrize(
    "fault",
    [{"mode": "error", "status": 500}, {"mode": "rate_limit"}, {"mode": "timeout", "hold_seconds": 3}],
    ids=["500", "429", "timeout"],
)
def test_a_failed_call_is_retried_with_the_same_idempotence_key(yookassa, fault):
    yookassa.fault(path="/v3/payments", method="POST", count=1, **fault)
    gateway = make_gateway(yookassa, timeout=0.5)

    session = gateway.create_checkout_session(checkout_request(key="checkout:retry"))
    sent = yookassa.requests(method="POST", path="/v3/payments")

    assert [request["idempotency_key"] for request in sent] == ["checkout:retry", "checkout:retry"]
    assert session.status == "open"
    assert len(gateway.list_charges(_day())) == 1


@pytest.mark.parametrize(("mode", "error"), [("error", TemporaryGatewayError), ("rate_limit", RateLimited)])
def test_a_call_failing_every_time_raises_a_retryable_error(yookassa, mode, error):
    yookassa.fault(path="/v3/payments", method="POST", mode=mode)

    with pytest.raises(error) as raised:
        make_gateway(yookassa).create_checkout_session(checkout_request())

    assert raised.value.retryable and len(yookassa.requests(method="POST", path="/v3/payments")) == 3


def test_an_answer_lost_after_the_charge_is_healed_by_the_retry_one_charge(yookassa):
    method_id = _paid_first_payment(yookassa)
    yookassa.fault(path="/v3/payments", method="POST", count=1, mode="error", when="after")
    gateway = make_gateway(yookassa)

    charged = gateway.charge_off_session(renewal(method_id, key="renewal:lost"))
    sent = yookassa.requests(method="POST", path="/v3/payments", idempotency_key="renewal:lost")

    assert [(r["fault"], r["replayed"]) for r in sent] == [("error after", False), (None, True)]
    renewals = [c for c in gateway.list_charges(_day()) if c.id != method_id]
    assert [c.id for c in renewals] == [charged.id]


def test_the_same_key_with_other_parameters_is_refused(yookassa):
    gateway = make_gateway(yookassa)
    gateway.create_checkout_session(checkout_request(key="checkout:same"))

    with pytest.raises(PermanentGatewayError) as refused:
        gateway.create_checkout_session(checkout_request(key="checkout:same", amount=49900))

    assert refused.value.code == "invalid_request" and refused.value.http_status == 400


def test_a_wrong_secret_key_is_a_configuration_error(yookassa):
    with pytest.raises(PermanentGatewayError) as refused:
        make_gateway(yookassa, secret_key="test_wrong").retrieve_checkout_session(
            "0" * 8 + "-0000-0000-0000-" + "0" * 12
        )

    assert (refused.value.code, refused.value.http_status, refused.value.retryable) == (
        "invalid_credentials",
        401,
        False,
    )


def test_notifications_are_delivered_with_retries_and_read_by_id(yookassa):
    with WebhookReceiver(statuses=[500, 503]) as receiver:
        yookassa.control("POST", "/config", {"webhook_url": receiver.url})
        gateway = make_gateway(yookassa)
        session = gateway.create_checkout_session(checkout_request())
        yookassa.pay(session.id, SUCCEEDS, expect=200)

        delivered = wait_until(lambda: yookassa.control("GET", "/notifications", event="payment.succeeded"))
        wait_until(lambda: yookassa.control("GET", "/notifications")[0]["status"] == "succeeded")
        body = json.dumps(receiver.events()[0]).encode()

    event = gateway.parse_webhook(body, "")
    attempts = yookassa.control("GET", "/notifications", event="payment.succeeded")[0]["attempts"]

    assert delivered[0]["object_id"] == session.id and len(attempts) == 3
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    assert (event.id, event.type, event.object_id) == (
        f"payment.succeeded:{session.id}:succeeded",
        "payment.succeeded",
        session.id,
    )
    assert gateway.event_fact(event) == CheckoutChanged(checkout_ref=session.id)


def test_a_forged_notification_changes_nothing(yookassa):
    gateway = make_gateway(yookassa)
    pending = gateway.create_checkout_session(checkout_request())
    made_up = "11111111-2222-3333-4444-555555555555"

    def claim(payment_id):
        body = {
            "type": "notification",
            "event": "payment.succeeded",
            "object": {
                "id": payment_id,
                "status": "succeeded",
                "paid": True,
                "amount": {"value": "399.00", "currency": "RUB"},
                "created_at": "2026-12-06T20:00:00.000Z",
            },
        }
        return gateway.parse_webhook(json.dumps(body).encode(), "")

    assert gateway.event_fact(claim(pending.id)) is None
    with pytest.raises(PermanentGatewayError) as unknown:
        gateway.event_fact(claim(made_up))
    assert unknown.value.code == "not_found"


def test_card_check_and_renewal_notifications_become_their_facts(yookassa):
    gateway = make_gateway(yookassa)
    check = gateway.create_checkout_session(checkout_request(mode="setup", key="check:facts"))
    yookassa.pay(check.id, SUCCEEDS, expect=200)
    method_id = _paid_first_payment(yookassa)
    yookassa.control("POST", f"/payment_methods/{method_id}", {"decline_reason": "insufficient_funds"})
    with pytest.raises(CardDeclined) as declined:
        gateway.charge_off_session(renewal(method_id, key="renewal:facts"))
    refund = gateway.create_refund(
        RefundRequest(
            payment_intent_id=method_id,
            amount=None,
            reason=None,
            metadata={},
            idempotency_key="refund:f",
            receipt_email=VIEWER_EMAIL,
            receipt_item_name="Monthly",
        )
    )

    def event(kind, object_id):
        obj = {"id": object_id, "status": "x", "created_at": "2026-12-06T20:00:00.000Z"}
        body = {"type": "notification", "event": kind, "object": obj}
        return gateway.parse_webhook(json.dumps(body).encode(), "")

    assert gateway.event_fact(event("payment.waiting_for_capture", check.id)) == PaymentMethodSaved(
        setup_ref=check.id, our_checkout_id="1"
    )
    renewal_id = str(declined.value.payment_intent_id)
    assert gateway.event_fact(event("payment.canceled", renewal_id)) == PaymentChanged(
        payment_ref=renewal_id, succeeded=False, decline="soft", our_payment_id="2"
    )
    fact = gateway.event_fact(event("refund.succeeded", refund.id))
    assert isinstance(fact, RefundChanged) and fact.refund.amount == 39900
    assert gateway.event_fact(event("payout.succeeded", refund.id)) is None
