"""The offline YooKassa sandbox: its objects match the official SDK's models, keys, auth, pages, process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from yookassa.domain.notification import WebhookNotificationFactory
from yookassa.domain.response import PaymentListResponse, PaymentResponse, RefundListResponse, RefundResponse
from yookassa.domain.response.payment_method_response import SavePaymentMethodBankCardResponse

from payments.sandbox.app import SandboxRefused
from payments.sandbox.yookassa import start_yookassa_sandbox
from payments.sandbox.yookassa.cards import TEST_CARDS
from payments.tests.sandbox_helpers import WebhookReceiver, http, read_form, wait_until
from payments.tests.yookassa_helpers import REPO, YooKassaProcess, fresh, run_sandbox_process


@pytest.fixture(scope="module")
def yookassa_process() -> Iterator[YooKassaProcess]:
    """Run one YooKassa sandbox process for this module."""
    yield from run_sandbox_process()


@pytest.fixture
def yookassa(yookassa_process: YooKassaProcess) -> YooKassaProcess:
    """Return the module's sandbox process, reset."""
    return fresh(yookassa_process)


RECEIPT = {
    "customer": {"email": "viewer@example.com"},
    "items": [
        {
            "description": "Monthly",
            "quantity": "1.00",
            "amount": {"value": "399.00", "currency": "RUB"},
            "vat_code": 11,
            "payment_subject": "service",
            "payment_mode": "full_payment",
        }
    ],
}


def _payment_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": {"value": "399.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": "http://127.0.0.1:9/back/"},
        "save_payment_method": True,
        "description": "Monthly",
        "metadata": {"payment_id": "1"},
        "receipt": RECEIPT,
    }
    body.update(changes)
    return body


def _post(sandbox: YooKassaProcess, path: str, body: Any, key: str | None) -> tuple[int, Any]:
    headers = {"Idempotence-Key": key} if key else {}
    return sandbox.api("POST", path, payload=body, headers=headers)


def _as_sdk_reads_it(model: Any) -> Any:
    # The SDK's models turn amounts into Decimals; its JSON is what it would send back.
    return json.loads(json.dumps(dict(model), default=str))


def test_every_object_the_sandbox_returns_reads_into_the_sdk_models_without_loss(yookassa):
    _, pending = _post(yookassa, "/payments", _payment_body(), "k-pending")
    yookassa.pay(pending["id"], "5555555555554444", expect=200)
    _, paid = yookassa.api("GET", f"/payments/{pending['id']}")
    _, held = _post(yookassa, "/payments", _payment_body(capture=False), "k-held")
    yookassa.pay(held["id"], "5555555555554444", expect=200)
    _, waiting = yookassa.api("GET", f"/payments/{held['id']}")
    _, released = _post(yookassa, f"/payments/{held['id']}/cancel", {}, "k-cancel")
    _, declined_page = _post(yookassa, "/payments", _payment_body(), "k-declined")
    yookassa.pay(declined_page["id"], "5555555555554600", expect=402)
    _, declined = yookassa.api("GET", f"/payments/{declined_page['id']}")
    _, renewal = _post(
        yookassa,
        "/payments",
        {
            "amount": {"value": "399.00", "currency": "RUB"},
            "capture": True,
            "payment_method_id": paid["id"],
            "receipt": RECEIPT,
        },
        "k-renewal",
    )
    _, refund = _post(
        yookassa,
        "/refunds",
        {"payment_id": paid["id"], "amount": {"value": "399.00", "currency": "RUB"}, "receipt": RECEIPT},
        "k-refund",
    )
    _, method = yookassa.api("GET", f"/payment_methods/{paid['id']}")
    _, payments = yookassa.api("GET", "/payments?limit=2")
    _, refunds = yookassa.api("GET", "/refunds")

    for payment in (pending, paid, waiting, released, declined, renewal):
        assert _as_sdk_reads_it(PaymentResponse(payment)) == payment
    assert _as_sdk_reads_it(RefundResponse(refund)) == refund
    assert _as_sdk_reads_it(SavePaymentMethodBankCardResponse(method)) == method
    assert _as_sdk_reads_it(PaymentListResponse(payments)) == payments and payments["next_cursor"]
    assert _as_sdk_reads_it(RefundListResponse(refunds)) == refunds
    assert [p["status"] for p in (pending, paid, waiting, released, declined, renewal)] == [
        "pending",
        "succeeded",
        "waiting_for_capture",
        "canceled",
        "canceled",
        "succeeded",
    ]
    assert declined["cancellation_details"] == {"party": "payment_network", "reason": "insufficient_funds"}


def test_notifications_read_into_the_sdk_notification_models(yookassa):
    with WebhookReceiver() as receiver:
        yookassa.control("POST", "/config", {"webhook_url": receiver.url})
        _, payment = _post(yookassa, "/payments", _payment_body(), "k-1")
        yookassa.pay(payment["id"], "5555555555554444", expect=200)
        _post(
            yookassa,
            "/refunds",
            {"payment_id": payment["id"], "amount": {"value": "1.00", "currency": "RUB"}},
            "k-2",
        )
        events = wait_until(lambda: len(receiver.events()) >= 2 and receiver.events())

    assert sorted(event["event"] for event in events) == ["payment.succeeded", "refund.succeeded"]
    for event in events:
        notification = WebhookNotificationFactory().create(event)
        assert _as_sdk_reads_it(notification.object) == event["object"]
    assert all("Signature" not in "".join(item["headers"]) for item in receiver.received)


def test_the_same_key_replays_and_other_parameters_are_refused(yookassa):
    first = _post(yookassa, "/payments", _payment_body(), "k-same")
    again = _post(yookassa, "/payments", _payment_body(), "k-same")
    other = _post(yookassa, "/payments", _payment_body(description="Yearly"), "k-same")
    missing = _post(yookassa, "/payments", _payment_body(), None)

    assert first == again and first[0] == 200
    assert (
        other[0] == 400
        and other[1]["code"] == "invalid_request"
        and other[1]["parameter"] == "Idempotence-Key"
    )
    assert missing[0] == 400 and missing[1]["parameter"] == "Idempotence-Key"
    assert len(yookassa.api("GET", "/payments")[1]["items"]) == 1


def test_http_basic_with_the_shop_id_and_secret_key_is_required(yookassa):
    wrong = yookassa.api("GET", "/payments", secret="test_wrong")
    anonymous = http("GET", yookassa.api_base + "/payments")

    assert wrong[0] == 401 and wrong[1]["code"] == "invalid_credentials"
    assert anonymous[0] == 401


def test_a_receipt_that_does_not_add_up_is_refused(yookassa):
    items = [{**RECEIPT["items"][0], "amount": {"value": "300.00", "currency": "RUB"}}]
    no_email = {"items": RECEIPT["items"]}

    short = _post(yookassa, "/payments", _payment_body(receipt={**RECEIPT, "items": items}), "k-short")
    anonymous = _post(yookassa, "/payments", _payment_body(receipt=no_email), "k-anon")

    assert short[0] == 400 and short[1]["parameter"] == "receipt.items"
    assert anonymous[0] == 400 and anonymous[1]["parameter"] == "receipt.customer"


def test_the_confirmation_page_is_a_card_form_and_refuses_unknown_cards(yookassa):
    _, payment = _post(yookassa, "/payments", _payment_body(), "k-page")
    url = payment["confirmation"]["confirmation_url"]

    status, _, html = http("GET", url)
    wrong, _, again = http(
        "POST", url, form={"card_number": "4000 0000 0000 0002", "exp": "12/30", "cvc": "123"}
    )

    form = read_form(html)
    assert url.endswith(f"/payments/confirm?orderId={payment['id']}") and status == 200
    assert {"card_number", "exp", "cvc"} <= set(form.inputs) and form.buttons == ["Pay"]
    assert wrong == 200 and "Card number is incorrect." in again
    assert yookassa.api("GET", f"/payments/{payment['id']}")[1]["status"] == "pending"


def test_an_unpaid_page_expires_after_an_hour(yookassa):
    _, payment = _post(yookassa, "/payments", _payment_body(), "k-expire")

    yookassa.control("POST", "/clock/advance", {"seconds": 3601})
    _, after = yookassa.api("GET", f"/payments/{payment['id']}")

    assert (
        after["status"] == "canceled" and after["cancellation_details"]["reason"] == "expired_on_confirmation"
    )


def test_every_documented_decline_card_cancels_with_its_reason(yookassa):
    declines = {number: card for number, card in TEST_CARDS.items() if card.decline_reason}

    for n, (number, card) in enumerate(sorted(declines.items())):
        _, payment = _post(yookassa, "/payments", _payment_body(), f"k-decline-{n}")
        yookassa.pay(payment["id"], number, expect=402)
        _, after = yookassa.api("GET", f"/payments/{payment['id']}")
        assert after["cancellation_details"] == {"party": card.party, "reason": card.decline_reason}

    assert len(declines) == 39


def test_the_process_refuses_production_settings():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production"}

    done = subprocess.run(
        [sys.executable, "-m", "payments.sandbox.yookassa", "--port", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )

    assert done.returncode != 0 and "refuses to start with production settings" in done.stderr


def test_starting_in_process_refuses_production_settings(monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.production")

    with pytest.raises(SandboxRefused):
        start_yookassa_sandbox()


def test_concurrent_requests_with_one_key_create_one_payment(yookassa):
    barrier = threading.Barrier(10)
    answers: list[tuple[int, Any]] = []

    def create() -> None:
        barrier.wait()
        answers.append(_post(yookassa, "/payments", _payment_body(), "k-race"))

    threads = [threading.Thread(target=create) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({json.dumps(answer, sort_keys=True) for answer in answers}) == 1 and answers[0][0] == 200
    assert len(yookassa.api("GET", "/payments")[1]["items"]) == 1
