"""Stripe's events become the gateway's facts: the only place that reads Stripe's event types.

Built on Stripe's published example objects (shared/stripe/fixtures3.json) where they serve,
with the fields our calls set (metadata, refunds, failures) filled in as Stripe sends them.
"""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from payments.gateways.base import (
    CheckoutChanged,
    GatewayEvent,
    PaymentChanged,
    PaymentMethodSaved,
    PaymentRefundsChanged,
    RefundChanged,
)
from payments.gateways.errors import PermanentGatewayError
from payments.gateways.stripe_events import event_fact_from_stripe
from payments.gateways.stripe_requests import with_session_id

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"


@pytest.fixture(scope="module")
def example():
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's example objects are not at {FIXTURES} (shared/stripe/fixtures3.json)")
    resources = json.loads(FIXTURES.read_text())["resources"]
    return lambda kind: copy.deepcopy(resources[kind])


def event(type_: str, obj: dict[str, Any]) -> GatewayEvent:
    return GatewayEvent(
        id="evt_1", type=type_, created=datetime(2027, 1, 1, tzinfo=UTC), object_id=obj.get("id"), object=obj
    )


@pytest.mark.parametrize(
    "type_",
    [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    ],
)
def test_every_end_of_a_checkout_page_asks_to_settle_it(example, type_):
    session = example("checkout.session")

    assert event_fact_from_stripe(event(type_, session)) == CheckoutChanged(checkout_ref=session["id"])


def test_a_succeeded_payment_carries_our_ids_back(example):
    intent = example("payment_intent")
    intent.update(
        status="succeeded", last_payment_error=None, metadata={"payment_id": "p-1", "checkout_id": "c-1"}
    )

    fact = event_fact_from_stripe(event("payment_intent.succeeded", intent))

    assert fact == PaymentChanged(
        payment_ref=intent["id"], succeeded=True, decline=None, our_payment_id="p-1", our_checkout_id="c-1"
    )


@pytest.mark.parametrize(
    ("error", "decline"),
    [
        ({"code": "card_declined", "decline_code": "insufficient_funds"}, "soft"),
        ({"code": "card_declined", "decline_code": "generic_decline"}, "soft"),
        ({"code": "expired_card"}, "hard"),
        ({"code": "card_declined", "decline_code": "stolen_card"}, "hard"),
        ({"code": "authentication_required"}, "authentication_required"),
    ],
)
def test_a_failed_payment_says_how_it_may_be_retried_in_our_words(example, error, decline):
    intent = example("payment_intent")
    intent.update(status="requires_payment_method", last_payment_error={"type": "card_error", **error})

    fact = event_fact_from_stripe(event("payment_intent.payment_failed", intent))

    assert isinstance(fact, PaymentChanged)
    assert (fact.succeeded, fact.decline) == (False, decline)


def test_a_refunded_charge_reports_its_total_and_each_refund(example):
    charge = example("charge")
    refund = example("refund")
    refund.update(status="requires_action", metadata={"refund_id": "r-1"})
    charge.update(payment_intent="pi_1", amount_refunded=100, refunds={"object": "list", "data": [refund]})

    fact = event_fact_from_stripe(event("charge.refunded", charge))

    assert isinstance(fact, PaymentRefundsChanged)
    assert (fact.payment_ref, fact.charge_ref, fact.refunded_total) == ("pi_1", charge["id"], 100)
    [listed] = fact.refunds
    # Waiting for the customer at Stripe is still on its way, in our words.
    assert (listed.id, listed.status, listed.amount, listed.currency) == (refund["id"], "pending", 100, "USD")
    assert listed.metadata == {"refund_id": "r-1"}


@pytest.mark.parametrize(
    "type_", ["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]
)
def test_a_refunds_news_is_one_refund_changed(example, type_):
    refund = example("refund")
    refund.update(status="failed", failure_reason="expired_or_canceled_card")

    fact = event_fact_from_stripe(event(type_, refund))

    assert isinstance(fact, RefundChanged)
    assert (fact.refund.status, fact.refund.failure_reason) == ("failed", "expired_or_canceled_card")


def test_a_saved_payment_method_names_our_checkout_page(example):
    setup = example("setup_intent")
    setup.update(status="succeeded", metadata={"checkout_id": "c-1"})

    fact = event_fact_from_stripe(event("setup_intent.succeeded", setup))

    assert fact == PaymentMethodSaved(setup_ref=setup["id"], our_checkout_id="c-1")


@pytest.mark.parametrize(
    "type_", ["customer.created", "invoice.paid", "charge.dispute.created", "payout.paid"]
)
def test_events_the_service_does_not_act_on_stand_for_no_fact(example, type_):
    assert event_fact_from_stripe(event(type_, example("charge"))) is None


@pytest.mark.parametrize(
    ("type_", "obj"),
    [
        ("charge.refunded", {"id": "ch_1", "amount_refunded": "100"}),
        ("charge.refunded", {"id": "ch_1", "amount_refunded": -1}),
        ("refund.updated", {"id": "re_1", "status": "reversed", "amount": 1, "currency": "usd"}),
        ("refund.updated", {"id": "re_1", "amount": 1, "currency": "usd"}),
        ("checkout.session.completed", {"object": "checkout.session"}),
        ("payment_intent.succeeded", {"id": "pi_1", "status": "succeeded"}),
    ],
)
def test_an_event_we_act_on_with_an_unreadable_object_is_refused_for_good(type_, obj):
    with pytest.raises(PermanentGatewayError) as raised:
        event_fact_from_stripe(event(type_, obj))
    assert raised.value.retryable is False


@pytest.mark.parametrize(
    ("ours", "sent"),
    [
        (
            "https://cinema.example/ok?checkout=1",
            "https://cinema.example/ok?checkout=1&session_id={CHECKOUT_SESSION_ID}",
        ),
        ("https://cinema.example/ok", "https://cinema.example/ok?session_id={CHECKOUT_SESSION_ID}"),
        (
            "https://cinema.example/ok?s={CHECKOUT_SESSION_ID}",
            "https://cinema.example/ok?s={CHECKOUT_SESSION_ID}",
        ),
    ],
)
def test_stripe_is_asked_to_add_its_pages_id_to_our_return_addresses(ours, sent):
    assert with_session_id(ours) == sent
