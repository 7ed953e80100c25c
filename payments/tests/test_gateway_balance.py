"""Each gateway reports what the provider holds for us now: per currency, available and pending.

The in-memory provider adds up its own ledger entries; the Stripe gateway reads `/v1/balance`,
here from the offline sandbox, whose balance object has the fields of Stripe's own example.
localstripe is left out: its `/v1/balance` answers a fixed 20.00 EUR as one object instead of
Stripe's lists, which the gateway refuses (see the mapping test below) rather than report.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from payments.gateways import get_gateway
from payments.gateways.base import CheckoutRequest, CustomerRequest, ProviderBalance, RefundRequest
from payments.gateways.errors import PermanentGatewayError, TemporaryGatewayError
from payments.gateways.memory import MemoryGateway
from payments.gateways.stripe_mapping import balance_from_stripe
from payments.sandbox.objects import processing_fee
from payments.tests.sandbox_helpers import TEST_KEY, http, make_client, payment_session_params
from payments.tests.test_sandbox_shapes import FIXTURES, json_type

NOW = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
CARD = "4242424242424242"


# --- the in-memory provider ---------------------------------------------------------------


def paid_page(gateway: MemoryGateway, *, amount: int, currency: str, key: str) -> str:
    """Open a page for `amount` and pay it with a test card; return its payment intent's id."""
    customer = gateway.create_customer(
        CustomerRequest(account_ref=key, email="", idempotency_key=f"cus:{key}")
    )
    session = gateway.create_checkout_session(
        CheckoutRequest(
            mode="payment",
            customer_id=customer,
            amount=amount,
            currency=currency,
            product_name="Monthly",
            client_reference_id=key,
            metadata={},
            save_payment_method=False,
            success_url="http://testserver/ok",
            cancel_url="http://testserver/cancel",
            expires_at=NOW + timedelta(hours=1),
            locale="en",
            idempotency_key=f"checkout:{key}",
        )
    )
    assert gateway.pay_checkout(session.id, CARD).outcome == "succeeded"
    payment_intent_id = gateway.retrieve_checkout_session(session.id).payment_intent_id
    assert payment_intent_id is not None
    return payment_intent_id


@pytest.fixture
def memory() -> MemoryGateway:
    return MemoryGateway(now=lambda: NOW, wall_now=lambda: NOW)


def test_the_memory_provider_holds_what_was_paid_less_fee_refund_and_payout(memory):
    paid = paid_page(memory, amount=39900, currency="RUB", key="alice")
    memory.create_refund(RefundRequest(paid, amount=10000, reason=None, metadata={}, idempotency_key="re:1"))
    memory.pay_out(20000, "RUB")

    [rubles] = memory.retrieve_balance()

    held = 39900 - processing_fee(39900) - 10000 - 20000
    assert rubles == ProviderBalance(currency="RUB", available=held, pending=0)
    assert rubles.total == held


def test_the_memory_provider_keeps_each_currency_apart_and_starts_empty(memory):
    assert memory.retrieve_balance() == []

    paid_page(memory, amount=39900, currency="RUB", key="alice")
    paid_page(memory, amount=999, currency="USD", key="bob")

    assert [(balance.currency, balance.total) for balance in memory.retrieve_balance()] == [
        ("RUB", 39900 - processing_fee(39900)),
        ("USD", 999 - processing_fee(999)),
    ]


def test_reading_the_balance_changes_nothing_and_sends_no_key(memory):
    paid_page(memory, amount=39900, currency="RUB", key="alice")
    lines = dict(memory.state.balance_transactions)

    memory.retrieve_balance()

    assert memory.state.calls[-1] == ("retrieve_balance", None)
    assert memory.state.balance_transactions == lines


# --- Stripe, through the offline sandbox --------------------------------------------------


@pytest.fixture
def sdk(_sandbox_server, stripe_sandbox):
    return make_client(_sandbox_server)


def pay_at_the_sandbox(sdk, control, amount: int) -> str:
    """Pay a Checkout page of `amount` EUR cents at the sandbox; return its payment intent's id."""
    customer = sdk.v1.customers.create(params={"email": "viewer@cinema.test"})
    session = sdk.v1.checkout.sessions.create(params=payment_session_params(customer.id, amount=amount))
    control.pay(session.id, CARD, expect=200)
    return str(sdk.v1.checkout.sessions.retrieve(session.id).payment_intent)


def test_the_stripe_gateway_reads_the_sandboxs_balance_after_a_payment_and_a_refund(sdk, stripe_sandbox):
    paid = pay_at_the_sandbox(sdk, stripe_sandbox, 499)
    sdk.v1.refunds.create(params={"payment_intent": paid, "amount": 100})

    balances = get_gateway("stripe").retrieve_balance()

    assert balances == [ProviderBalance(currency="EUR", available=499 - processing_fee(499) - 100, pending=0)]


def test_the_balance_is_read_with_a_get_and_no_idempotency_key(sdk, stripe_sandbox):
    get_gateway("stripe").retrieve_balance()

    [request] = stripe_sandbox.requests(path="/v1/balance")
    assert (request["method"], request["idempotency_key"], request["status"]) == ("GET", None, 200)


def test_a_sandbox_that_fails_makes_the_balance_a_temporary_error(stripe_sandbox):
    stripe_sandbox.post("/faults", {"mode": "error", "path": "/v1/balance", "status": 503})

    with pytest.raises(TemporaryGatewayError):
        get_gateway("stripe").retrieve_balance()


def test_the_sandboxs_balance_has_the_fields_and_json_types_of_stripes_example(
    _sandbox_server, sdk, stripe_sandbox
):
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's example objects are not at {FIXTURES} (shared/stripe/fixtures3.json)")
    example = json.loads(FIXTURES.read_text())["resources"]["balance"]
    pay_at_the_sandbox(sdk, stripe_sandbox, 499)
    status, _, body = http(
        "GET", _sandbox_server.url("/v1/balance"), headers={"Authorization": f"Bearer {TEST_KEY}"}
    )
    assert status == 200, body
    ours = json.loads(body)

    assert ours["object"] == "balance"
    assert sorted(set(example) - set(ours)) == []
    assert {key: json_type(ours[key]) for key in example} == {key: json_type(example[key]) for key in example}
    # The entries of each list too: amount, currency and the breakdown by source type.
    for funds in ("available", "pending"):
        assert set(ours[funds][0]) == set(example[funds][0])
        assert ours[funds][0]["currency"] == "eur"
    assert ours["available"][0]["amount"] == 499 - processing_fee(499)


# --- reading Stripe's answer ----------------------------------------------------------------


def test_stripes_example_balance_reads_as_zero_in_its_currency():
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's example objects are not at {FIXTURES} (shared/stripe/fixtures3.json)")
    example = json.loads(FIXTURES.read_text())["resources"]["balance"]

    assert balance_from_stripe(example) == [ProviderBalance(currency="USD", available=0, pending=0)]


def test_each_currency_adds_available_and_pending_and_leaves_the_connect_reserve_out():
    answer = {
        "object": "balance",
        "available": [
            {"amount": 120000, "currency": "eur", "source_types": {"card": 100000, "bank_account": 20000}},
            {"amount": -500, "currency": "usd", "source_types": {"card": -500}},
        ],
        "pending": [{"amount": 3000, "currency": "eur", "source_types": {"card": 3000}}],
        "connect_reserved": [{"amount": 777, "currency": "eur"}],
        "livemode": False,
    }

    balances = balance_from_stripe(answer)

    assert balances == [
        ProviderBalance(currency="EUR", available=120000, pending=3000),
        ProviderBalance(currency="USD", available=-500, pending=0),
    ]
    assert [balance.total for balance in balances] == [123000, -500]


@pytest.mark.parametrize(
    "answer",
    [
        # What localstripe 1.15 answers: one object per list, with a made-up 20.00 EUR.
        {
            "available": {"amount": 2000, "currency": "eur", "source_types": {"card": 2000}},
            "pending": {"amount": 0, "currency": "eur", "source_types": {"card": 0}},
            "livemode": False,
        },
        {"object": "balance", "available": [{"currency": "eur"}], "pending": []},
        {"object": "balance", "available": [{"amount": 1, "currency": "euro"}], "pending": []},
    ],
)
def test_an_answer_that_is_not_stripes_balance_is_refused(answer):
    with pytest.raises(PermanentGatewayError) as refused:
        balance_from_stripe(answer)

    assert refused.value.code == "unexpected_response"


def test_a_balance_refuses_a_lower_case_currency():
    with pytest.raises(ValueError, match="upper-case"):
        ProviderBalance(currency="eur", available=0, pending=0)
