"""The sandbox's hosted Checkout page, filled in as a viewer would, with Stripe's test cards."""

import json
from html import unescape
from urllib.parse import urlsplit

import pytest

from payments.sandbox import start_sandbox
from payments.tests.sandbox_helpers import Control, http, make_client, payment_session_params, read_form


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
def session(client):
    customer = client.v1.customers.create(params={"email": "viewer@cinema.test"})
    return client.v1.checkout.sessions.create(params=payment_session_params(customer.id, amount=499))


def submit(url, card_number, exp="12 / 34", cvc="123"):
    """Post the card form the way a browser does."""
    page = read_form(http("GET", url)[2])
    action = page.forms[0]["action"]
    return http(
        "POST",
        urlsplit(url)._replace(path=action).geturl(),
        form={"card_number": card_number, "exp": exp, "cvc": cvc},
    )


def event_types(client):
    return [event.type for event in client.v1.events.list(params={"limit": 100}).data]


def test_page_shows_the_card_form_amount_and_product(session):
    status, _, html = http("GET", session.url)

    page = read_form(html)
    assert status == 200
    assert {"card_number", "exp", "cvc"} <= set(page.inputs)
    assert "Pay" in [button.strip() for button in page.buttons]
    assert page.forms[0]["method"] == "post"
    assert "4.99 EUR" in html
    assert "Cinema Monthly" in html
    assert "http://billing.test/checkout/cancel" in page.links


def test_paying_with_4242_redirects_to_success_and_saves_the_card(client, session):
    status, headers, _ = submit(session.url, "4242 4242 4242 4242")

    assert status == 303
    assert headers["Location"] == f"http://billing.test/checkout/success?session_id={session.id}"
    paid = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (paid.status, paid.payment_status, paid.payment_intent.status) == ("complete", "paid", "succeeded")
    card = client.v1.payment_methods.retrieve(paid.payment_intent.payment_method)
    assert (card.type, card.customer, card.card.last4, card.card.exp_month, card.card.exp_year) == (
        "card",
        paid.customer,
        "4242",
        12,
        2034,
    )
    assert len(card.card.fingerprint) == 16
    assert "checkout.session.completed" in event_types(client)


@pytest.mark.parametrize(
    ("card_number", "message", "decline_code"),
    [
        ("4000 0000 0000 0002", "Your card was declined.", "generic_decline"),
        ("4000 0000 0000 9995", "Your card has insufficient funds.", "insufficient_funds"),
    ],
)
def test_declined_card_shows_why_and_lets_the_viewer_retry(
    client, session, card_number, message, decline_code
):
    status, _, html = submit(session.url, card_number)

    assert status == 200
    assert message in html
    assert {"card_number", "exp", "cvc"} <= set(read_form(html).inputs)
    declined = client.v1.checkout.sessions.retrieve(session.id)
    assert declined.status == "open"
    intent = client.v1.payment_intents.retrieve(declined.payment_intent)
    assert intent.status == "requires_payment_method"
    assert (intent.last_payment_error.code, intent.last_payment_error.decline_code) == (
        "card_declined",
        decline_code,
    )
    assert "payment_intent.payment_failed" in event_types(client)

    retried = submit(session.url, "4242424242424242")

    assert retried[0] == 303
    assert client.v1.payment_intents.retrieve(declined.payment_intent).status == "succeeded"


def test_3184_card_asks_for_authentication_then_pays(client, sandbox, session):
    status, headers, _ = submit(session.url, "4000 0027 6000 3184")
    assert status == 303
    waiting = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    assert waiting.status == "requires_action"

    step = http("GET", sandbox.url(headers["Location"]))[2]
    page = read_form(step)
    done = http("POST", sandbox.url(page.forms[0]["action"]), form={"action": "complete"})

    assert [button.strip() for button in page.buttons] == ["Complete authentication", "Fail authentication"]
    assert done[0] == 303
    assert done[1]["Location"].startswith("http://billing.test/checkout/success")
    assert client.v1.payment_intents.retrieve(waiting.id).status == "succeeded"


def test_failed_authentication_keeps_the_session_open_for_another_card(client, sandbox, session):
    _, headers, _ = submit(session.url, "4000002760003184")

    status, _, html = http("POST", sandbox.url(headers["Location"]), form={"action": "fail"})

    assert status == 200
    assert "unable to authenticate" in html
    fetched = client.v1.checkout.sessions.retrieve(session.id)
    assert fetched.status == "open"
    intent = client.v1.payment_intents.retrieve(fetched.payment_intent)
    assert (intent.status, intent.last_payment_error.code) == (
        "requires_payment_method",
        "payment_intent_authentication_failure",
    )
    assert submit(session.url, "4242424242424242")[0] == 303


def test_0341_card_pays_at_checkout(client, session):
    assert submit(session.url, "4000000000000341")[0] == 303
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


@pytest.mark.parametrize(
    ("card_number", "exp", "cvc", "message"),
    [
        ("4242 4242 4242 4241", "12/34", "123", "Your card number is incorrect."),
        ("1234", "12/34", "123", "Your card number is incorrect."),
        ("4242424242424242", "13/34", "123", "Your card's expiration date is incomplete."),
        ("4242424242424242", "01/20", "123", "Your card's expiration date is in the past."),
        ("4242424242424242", "12/34", "1", "Your card's security code is incomplete."),
    ],
)
def test_mistyped_card_is_refused_before_any_attempt(client, session, card_number, exp, cvc, message):
    status, _, html = submit(session.url, card_number, exp, cvc)

    assert status == 200
    assert message in unescape(html)
    assert client.v1.checkout.sessions.retrieve(session.id).payment_intent is None
    assert "payment_intent.payment_failed" not in event_types(client)


def test_completed_session_cannot_be_paid_twice(client, session):
    submit(session.url, "4242424242424242")

    status, _, html = http(
        "POST", session.url, form={"card_number": "4242424242424242", "exp": "12/34", "cvc": "123"}
    )

    assert status == 200
    assert "already complete" in html
    assert len([t for t in event_types(client) if t == "charge.succeeded"]) == 1


def test_card_numbers_are_never_kept(sandbox, control, session):
    submit(session.url, "4000 0000 0000 0002")
    submit(session.url, "4242 4242 4242 4242")

    everything = json.dumps(
        [
            control.objects(kind)
            for kind in ("payment_method", "charge", "payment_intent", "event", "checkout.session")
        ]
    )
    everything += json.dumps(control.requests())

    assert "4242424242424242" not in everything
    assert "4242 4242 4242 4242" not in everything


def test_unknown_session_page_is_not_found(sandbox):
    assert http("GET", sandbox.url("/checkout/cs_test_nothing"))[0] == 404


def test_setup_mode_with_3184_card_saves_it_after_authentication(client, control):
    customer = client.v1.customers.create(params={"email": "viewer@cinema.test"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer.id,
            "currency": "eur",
            "success_url": "http://billing.test/ok",
        }
    )

    asked = control.pay(session.id, "4000002760003184")
    done = control.post(f"/checkout/{session.id}/authenticate", {"action": "complete"})

    assert asked["outcome"] == "requires_action"
    assert asked["setup_intent"]["status"] == "requires_action"
    assert done["outcome"] == "succeeded"
    setup = client.v1.setup_intents.retrieve(done["session"]["setup_intent"])
    assert setup.status == "succeeded"
    assert client.v1.payment_methods.retrieve(setup.payment_method).customer == customer.id


def test_setup_mode_with_a_declined_card_records_the_failure(client, control):
    customer = client.v1.customers.create(params={"email": "viewer@cinema.test"})
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "customer": customer.id,
            "currency": "eur",
            "success_url": "http://billing.test/ok",
        }
    )

    declined = control.pay(session.id, "4000000000000002", expect=402)

    assert declined["message"] == "Your card was declined."
    assert declined["setup_intent"]["last_setup_error"]["code"] == "card_declined"
    assert "setup_intent.setup_failed" in event_types(client)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
