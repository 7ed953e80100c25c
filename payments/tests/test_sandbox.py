"""The Stripe sandbox's API, driven through the official SDK as the gateway drives it."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import stripe

from payments.sandbox import start_sandbox
from payments.tests.sandbox_helpers import Control, http, make_client, payment_session_params


@pytest.fixture
def sandbox():
    with start_sandbox() as handle:
        yield handle


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


@pytest.fixture
def control(sandbox):
    return Control(sandbox)


@pytest.fixture
def customer(client):
    return client.v1.customers.create(
        params={"email": "viewer@cinema.test", "name": "Ann Viewer", "metadata": {"account_id": "42"}}
    )


def saved_card(client, control, customer, card_number="4242424242424242"):
    """Return the PaymentMethod saved by paying a first Checkout Session with `card_number`."""
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    assert control.pay(session.id, card_number)["outcome"] == "succeeded"
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    return intent.payment_method


def charge_off_session(client, customer, payment_method, amount=499):
    return client.v1.payment_intents.create(
        params={
            "customer": customer.id,
            "payment_method": payment_method,
            "amount": amount,
            "currency": "eur",
            "off_session": True,
            "confirm": True,
            "description": "Cinema Monthly renewal",
            "metadata": {"payment_id": "pay_renewal"},
        }
    )


def test_customer_is_created_and_read_back(client):
    created = client.v1.customers.create(
        params={"email": "viewer@cinema.test", "name": "Ann", "metadata": {"account_id": "42"}}
    )

    fetched = client.v1.customers.retrieve(created.id)

    assert created.id.startswith("cus_")
    assert (fetched.email, fetched.name, fetched.metadata.to_dict()) == (
        "viewer@cinema.test",
        "Ann",
        {"account_id": "42"},
    )


def test_checkout_session_is_created_open_with_a_hosted_page(sandbox, client, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id, amount=799))

    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_total, session.currency, session.customer) == (799, "eur", customer.id)
    assert session.client_reference_id == "pay_1"
    assert session.metadata.to_dict() == {"payment_id": "pay_1"}
    assert session.url == f"{sandbox.base_url}/checkout/{session.id}"
    assert session.payment_intent is None  # created when the viewer first submits a card, as at Stripe
    assert session.expires_at > session.created


def test_paid_session_expands_its_payment_intent(client, control, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    control.pay(session.id, "4242 4242 4242 4242")

    fetched = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})

    intent = fetched.payment_intent
    assert (fetched.status, fetched.payment_status) == ("complete", "paid")
    assert (intent.object, intent.status, intent.amount_received) == ("payment_intent", "succeeded", 499)
    assert intent.metadata.to_dict() == {"payment_id": "pay_1"}
    assert intent.setup_future_usage == "off_session"
    card = client.v1.payment_methods.retrieve(intent.payment_method)
    assert (card.customer, card.card.brand, card.card.last4) == (customer.id, "visa", "4242")
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid, charge.amount, charge.payment_intent) == (
        "succeeded",
        True,
        499,
        intent.id,
    )


def test_setup_mode_saves_a_card_for_later(client, control, customer):
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer.id,
            "currency": "eur",
            "setup_intent_data": {"metadata": {"account_id": "42"}},
            "success_url": "http://billing.test/cards/saved?session_id={CHECKOUT_SESSION_ID}",
        }
    )

    result = control.pay(session.id, "4242424242424242")

    assert result["redirect_url"] == f"http://billing.test/cards/saved?session_id={session.id}"
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert (fetched.status, fetched.payment_status, fetched.payment_intent) == (
        "complete",
        "no_payment_required",
        None,
    )
    setup = client.v1.setup_intents.retrieve(fetched.setup_intent)
    assert (setup.status, setup.usage, setup.customer) == ("succeeded", "off_session", customer.id)
    assert setup.metadata.to_dict() == {"account_id": "42"}
    assert client.v1.payment_methods.retrieve(setup.payment_method).customer == customer.id


def test_off_session_charge_of_a_saved_4242_card_succeeds(client, control, customer):
    card = saved_card(client, control, customer)

    intent = charge_off_session(client, customer, card, amount=999)

    assert (intent.status, intent.amount_received, intent.payment_method) == ("succeeded", 999, card)
    assert intent.metadata.to_dict() == {"payment_id": "pay_renewal"}
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.amount, charge.description) == ("succeeded", 999, "Cinema Monthly renewal")
    assert charge.payment_method_details.card.last4 == "4242"


def test_off_session_charge_of_0341_card_is_declined(client, control, customer):
    card = saved_card(client, control, customer, "4000000000000341")

    with pytest.raises(stripe.CardError) as caught:
        charge_off_session(client, customer, card)

    error = caught.value
    assert (error.http_status, error.code) == (402, "card_declined")
    body = error.json_body["error"]
    assert body["decline_code"] == "generic_decline"
    assert body["payment_intent"]["status"] == "requires_payment_method"
    assert body["payment_intent"]["last_payment_error"]["code"] == "card_declined"
    assert body["payment_method"]["id"] == card
    assert client.v1.charges.retrieve(body["charge"]).status == "failed"


def test_off_session_charge_of_3184_card_needs_authentication(client, control, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    assert control.pay(session.id, "4000002760003184")["outcome"] == "requires_action"
    assert (
        control.post(f"/checkout/{session.id}/authenticate", {"action": "complete"})["outcome"] == "succeeded"
    )
    card = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    ).payment_method

    with pytest.raises(stripe.CardError) as caught:
        charge_off_session(client, customer, card)

    error = caught.value
    assert (error.http_status, error.code) == (402, "authentication_required")
    intent = error.json_body["error"]["payment_intent"]
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["payment_method"]["id"] == card
    assert client.v1.payment_intents.retrieve(intent["id"]).status == "requires_payment_method"


def test_off_session_charge_of_another_customers_card_is_refused(client, control, customer):
    card = saved_card(client, control, customer)
    stranger = client.v1.customers.create(params={"email": "other@cinema.test"})

    with pytest.raises(stripe.InvalidRequestError) as caught:
        charge_off_session(client, stranger, card)

    assert caught.value.param == "payment_method"


def test_partial_then_full_refund_and_over_refund_is_refused(client, control, customer):
    intent = charge_off_session(client, customer, saved_card(client, control, customer), amount=1000)

    partial = client.v1.refunds.create(
        params={
            "payment_intent": intent.id,
            "amount": 300,
            "reason": "requested_by_customer",
            "metadata": {"refund_id": "r1"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError) as over:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 701})
    rest = client.v1.refunds.create(params={"charge": intent.latest_charge})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent.id})

    assert (partial.status, partial.amount, partial.reason) == ("succeeded", 300, "requested_by_customer")
    assert partial.metadata.to_dict() == {"refund_id": "r1"}
    assert (rest.amount, rest.payment_intent) == (700, intent.id)
    assert client.v1.refunds.retrieve(rest.id).charge == intent.latest_charge
    assert (over.value.http_status, over.value.param) == (400, "amount")
    assert again.value.code == "charge_already_refunded"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)


def test_same_idempotency_key_replays_without_creating_anything(sandbox, client, control, customer):
    params = payment_session_params(customer.id)

    first = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "checkout-pay_1"})
    second = client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "checkout-pay_1"})

    assert second.id == first.id
    assert len(control.objects("checkout.session")) == 1
    arrived = control.requests(method="POST", path="/v1/checkout/sessions")
    assert [(r["idempotency_key"], r["replayed"]) for r in arrived] == [
        ("checkout-pay_1", False),
        ("checkout-pay_1", True),
    ]
    assert second.last_response.headers["Idempotent-Replayed"] == "true"


def test_idempotency_key_reused_with_other_parameters_is_refused(client, customer):
    client.v1.checkout.sessions.create(
        params=payment_session_params(customer.id), options={"idempotency_key": "k1"}
    )

    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.checkout.sessions.create(
            params=payment_session_params(customer.id, amount=500), options={"idempotency_key": "k1"}
        )

    assert caught.value.http_status == 400
    assert caught.value.json_body["error"]["type"] == "idempotency_error"


def test_declined_off_session_charge_is_replayed_not_retried(client, control, customer):
    card = saved_card(client, control, customer, "4000000000000341")
    params = {
        "customer": customer.id,
        "payment_method": card,
        "amount": 499,
        "currency": "eur",
        "off_session": True,
        "confirm": True,
    }

    for _ in range(2):
        with pytest.raises(stripe.CardError):
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "renewal-1"})

    assert len([c for c in control.objects("charge") if c["status"] == "failed"]) == 1


def test_events_are_listed_newest_first_with_pagination(client):
    for number in range(5):
        client.v1.customers.create(params={"email": f"viewer{number}@cinema.test"})
    everything = client.v1.events.list(params={"limit": 100})

    first = client.v1.events.list(params={"limit": 2})
    second = client.v1.events.list(params={"limit": 2, "starting_after": first.data[-1].id})
    back = client.v1.events.list(params={"limit": 2, "ending_before": second.data[0].id})
    last = client.v1.events.list(params={"limit": 2, "starting_after": everything.data[3].id})

    emails = [event.data.object.email for event in everything.data]
    assert emails == [f"viewer{number}@cinema.test" for number in reversed(range(5))]
    assert [e.id for e in first.data + second.data] == [e.id for e in everything.data[:4]]
    assert first.has_more and second.has_more and not last.has_more
    assert [e.id for e in back.data] == [e.id for e in first.data]
    assert [e.id for e in last.data] == [everything.data[4].id]
    assert client.v1.events.retrieve(first.data[0].id).type == "customer.created"


def test_events_are_filtered_by_type_and_creation_time(client, control, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    control.pay(session.id, "4242424242424242")
    newest = client.v1.events.list(params={"limit": 1}).data[0]

    completed = client.v1.events.list(params={"type": "checkout.session.completed"})
    recent = client.v1.events.list(params={"created": {"gte": newest.created}, "limit": 100})
    later = client.v1.events.list(params={"created": {"gt": newest.created}})

    assert [e.data.object.id for e in completed.data] == [session.id]
    assert newest.id in [e.id for e in recent.data]
    assert later.data == []
    event = completed.data[0]
    assert (event.object, event.livemode, event.api_version) == ("event", False, "2026-10-28.endive")


def test_every_state_change_records_its_event(client, control, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    control.pay(session.id, "4000000000000002", expect=402)
    control.pay(session.id, "4242424242424242")
    intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    client.v1.refunds.create(params={"payment_intent": intent_id})
    expired = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    client.v1.checkout.sessions.expire(expired.id)

    types = {event.type for event in client.v1.events.list(params={"limit": 100}).data}

    assert {
        "customer.created",
        "payment_intent.payment_failed",
        "charge.failed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "payment_method.attached",
        "checkout.session.completed",
        "refund.created",
        "charge.refunded",
        "checkout.session.expired",
    } <= types


def test_balance_transactions_record_charges_and_refunds(client, control, customer):
    intent = charge_off_session(client, customer, saved_card(client, control, customer), amount=1000)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 400})

    listed = client.v1.balance_transactions.list(params={"limit": 10}).data
    first_page = client.v1.balance_transactions.list(params={"limit": 1})
    rest = client.v1.balance_transactions.list(params={"limit": 10, "starting_after": first_page.data[0].id})
    window = client.v1.balance_transactions.list(
        params={"created": {"gte": listed[-1].created, "lt": listed[0].created + 1}}
    )

    assert [t.type for t in listed] == ["refund", "charge", "charge"]
    refund_txn, charge_txn = listed[0], listed[1]
    assert (refund_txn.amount, refund_txn.source, refund_txn.fee) == (-400, refund.id, 0)
    assert (charge_txn.amount, charge_txn.source, charge_txn.fee, charge_txn.net) == (
        1000,
        intent.latest_charge,
        59,
        941,
    )
    assert client.v1.charges.retrieve(intent.latest_charge).balance_transaction == charge_txn.id
    assert [t.id for t in first_page.data + rest.data] == [t.id for t in listed]
    assert len(window.data) == 3


def test_charges_and_refunds_are_listed_newest_first_by_creation(client, control, customer):
    card = saved_card(client, control, customer)
    first = charge_off_session(client, customer, card, amount=1000)
    second = charge_off_session(client, customer, card, amount=2000)
    refund = client.v1.refunds.create(params={"payment_intent": first.id, "amount": 400})

    charges = client.v1.charges.list(params={"limit": 10}).data
    first_page = client.v1.charges.list(params={"limit": 1})
    rest = client.v1.charges.list(params={"limit": 10, "starting_after": first_page.data[0].id})
    window = client.v1.charges.list(
        params={"created": {"gte": charges[-1].created, "lt": charges[0].created + 1}}
    )
    later = client.v1.charges.list(params={"created": {"gte": charges[0].created + 1}})
    of_intent = client.v1.charges.list(params={"payment_intent": first.id})
    refunds = client.v1.refunds.list(params={"created": {"gte": refund.created, "lt": refund.created + 1}})
    of_charge = client.v1.refunds.list(params={"charge": second.latest_charge})

    # The first checkout (which saved the card) charged too: three charges, newest first.
    assert [c.id for c in charges][:2] == [second.latest_charge, first.latest_charge]
    assert [c.amount for c in charges] == [2000, 1000, 499]
    assert first_page.has_more is True
    assert [c.id for c in first_page.data + rest.data] == [c.id for c in charges]
    assert [c.id for c in window.data] == [c.id for c in charges]
    assert later.data == []
    assert [c.id for c in of_intent.data] == [first.latest_charge]
    assert [(r.id, r.amount, r.charge, r.balance_transaction is not None) for r in refunds.data] == [
        (refund.id, 400, first.latest_charge, True)
    ]
    assert of_charge.data == []


def test_listing_charges_refuses_what_stripe_refuses(sandbox):
    headers = {"Authorization": "Bearer sk_test_sandbox"}

    unknown = http("GET", sandbox.url("/v1/charges?colour=red"), headers=headers)
    bad_cursor = http("GET", sandbox.url("/v1/refunds?starting_after=re_missing"), headers=headers)

    assert (unknown[0], json.loads(unknown[2])["error"]["code"]) == (400, "parameter_unknown")
    assert (bad_cursor[0], json.loads(bad_cursor[2])["error"]["code"]) == (400, "resource_missing")


def test_merchant_expires_an_open_session(client, control, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
    control.pay(session.id, "4000000000000002", expect=402)

    expired = client.v1.checkout.sessions.expire(session.id)

    assert expired.status == "expired"
    assert client.v1.payment_intents.retrieve(expired.payment_intent).status == "canceled"
    assert control.pay(session.id, "4242424242424242", expect=409)["outcome"] == "unavailable"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_session_expires_once_its_time_has_passed(client, control, customer):
    session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))

    control.post("/clock/advance", {"seconds": 24 * 60 * 60 + 1})

    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert (
        client.v1.events.list(params={"type": "checkout.session.expired"}).data[0].data.object.id
        == session.id
    )


def test_unknown_ids_answer_resource_missing(client):
    for call in (
        lambda: client.v1.customers.retrieve("cus_missing"),
        lambda: client.v1.checkout.sessions.retrieve("cs_test_missing"),
        lambda: client.v1.payment_intents.retrieve("pi_missing"),
        lambda: client.v1.payment_methods.retrieve("pm_missing"),
        lambda: client.v1.setup_intents.retrieve("seti_missing"),
        lambda: client.v1.charges.retrieve("ch_missing"),
        lambda: client.v1.refunds.retrieve("re_missing"),
        lambda: client.v1.events.retrieve("evt_missing"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


def test_parameters_are_checked_like_stripe_does(client, customer):
    with pytest.raises(stripe.InvalidRequestError) as no_items:
        client.v1.checkout.sessions.create(
            params={"mode": "payment", "customer": customer.id, "success_url": "http://billing.test/ok"}
        )
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"emial": "typo@cinema.test"})
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        client.v1.checkout.sessions.create(params=payment_session_params("cus_nobody"))

    assert no_items.value.param == "line_items"
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "emial")
    assert (no_customer.value.http_status, no_customer.value.code) == (400, "resource_missing")


def test_api_requires_a_test_secret_key(sandbox):
    missing = http("GET", sandbox.url("/v1/customers/cus_x"))
    live = http(
        "GET", sandbox.url("/v1/customers/cus_x"), headers={"Authorization": "Bearer sk_live_abcdef123456"}
    )

    assert missing[0] == live[0] == 401
    assert "sk_live_abcdef123456" not in live[2]
    assert json.loads(live[2])["error"]["type"] == "invalid_request_error"


def test_concurrent_requests_with_one_key_create_one_session(sandbox, control, customer):
    params = payment_session_params(customer.id)

    def create(_):
        return (
            make_client(sandbox)
            .v1.checkout.sessions.create(params=params, options={"idempotency_key": "same"})
            .id
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(create, range(8)))

    assert len(ids) == 1
    assert len(control.objects("checkout.session")) == 1


def test_concurrent_requests_with_distinct_keys_all_succeed(sandbox, control, customer):
    def create(number):
        params = payment_session_params(customer.id, payment_id=f"pay_{number}")
        return make_client(sandbox).v1.checkout.sessions.create(params=params).client_reference_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        references = sorted(pool.map(create, range(16)))

    assert references == sorted(f"pay_{number}" for number in range(16))
    assert len(control.objects("checkout.session")) == 16
