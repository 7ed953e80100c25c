"""The sandbox's objects have the fields and JSON types of Stripe's own example objects."""

import json
from pathlib import Path

import pytest

from payments.sandbox import start_sandbox
from payments.tests.sandbox_helpers import TEST_KEY, Control, http, make_client, payment_session_params

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"
TYPES = (
    "checkout.session",
    "payment_intent",
    "charge",
    "refund",
    "customer",
    "payment_method",
    "setup_intent",
    "event",
    "balance_transaction",
)


def json_type(value):
    # bool first: it is an int to Python but not to JSON.
    for kind, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (dict, "object"),
        (list, "array"),
    ):
        if isinstance(value, kind):
            return name
    raise TypeError(value)


@pytest.fixture(scope="module")
def stripe_examples():
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's example objects are not at {FIXTURES} (shared/stripe/fixtures3.json)")
    return json.loads(FIXTURES.read_text())["resources"]


@pytest.fixture(scope="module")
def sandbox_objects():
    """Return one object of each type as the sandbox's API answers it (raw JSON, not SDK objects)."""
    with start_sandbox() as sandbox:
        client, control = make_client(sandbox), Control(sandbox)

        def get(path):
            status, _, body = http("GET", sandbox.url(path), headers={"Authorization": f"Bearer {TEST_KEY}"})
            assert status == 200, body
            return json.loads(body)

        customer = client.v1.customers.create(params={"email": "viewer@cinema.test"})
        session = client.v1.checkout.sessions.create(params=payment_session_params(customer.id))
        control.pay(session.id, "4242424242424242")
        setup = client.v1.checkout.sessions.create(
            params={
                "mode": "setup",
                "customer": customer.id,
                "currency": "eur",
                "success_url": "http://billing.test/",
            }
        )
        control.pay(setup.id, "4242424242424242")
        paid = get(f"/v1/checkout/sessions/{session.id}")
        intent = get(f"/v1/payment_intents/{paid['payment_intent']}")
        refund = client.v1.refunds.create(params={"payment_intent": intent["id"], "amount": 100})
        yield {
            "checkout.session": paid,
            "payment_intent": intent,
            "charge": get(f"/v1/charges/{intent['latest_charge']}"),
            "refund": get(f"/v1/refunds/{refund.id}"),
            "customer": get(f"/v1/customers/{customer.id}"),
            "payment_method": get(f"/v1/payment_methods/{intent['payment_method']}"),
            "setup_intent": get(
                f"/v1/setup_intents/{get(f'/v1/checkout/sessions/{setup.id}')['setup_intent']}"
            ),
            "event": get("/v1/events?limit=1")["data"][0],
            "balance_transaction": get("/v1/balance_transactions?limit=1")["data"][0],
        }


@pytest.mark.parametrize("object_type", TYPES)
def test_object_has_stripes_fields_and_json_types(stripe_examples, sandbox_objects, object_type):
    example = stripe_examples[object_type]
    ours = sandbox_objects[object_type]

    missing = sorted(set(example) - set(ours))
    mismatched = {
        key: (json_type(example[key]), json_type(ours[key]))
        for key in example
        if key in ours
        and example[key] is not None
        and ours[key] is not None
        and json_type(example[key]) != json_type(ours[key])
    }

    assert ours["object"] == object_type
    assert missing == []
    assert mismatched == {}
