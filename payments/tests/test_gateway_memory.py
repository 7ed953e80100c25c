"""The in-memory provider decides as the sandbox does: test cards, idempotency keys, refunds."""

from datetime import UTC, datetime, timedelta

import pytest

from payments.gateways.base import CheckoutRequest, CustomerRequest, OffSessionCharge, RefundRequest
from payments.gateways.errors import AuthenticationRequired, CardDeclined, PermanentGatewayError
from payments.gateways.memory import MemoryGateway

NOW = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def wall() -> list[datetime]:
    """The real time pages live by, which a test moves by hand."""
    return [NOW]


@pytest.fixture
def gateway(wall) -> MemoryGateway:
    return MemoryGateway(now=lambda: NOW, wall_now=lambda: wall[0])


def page(
    gateway: MemoryGateway, *, mode: str = "payment", key: str = "checkout:1", amount: int = 39900
) -> str:
    customer = gateway.create_customer(
        CustomerRequest(account_ref="acc-1", email="", idempotency_key="cus:1")
    )
    session = gateway.create_checkout_session(
        CheckoutRequest(
            mode=mode,  # type: ignore[arg-type]
            customer_id=customer,
            amount=amount if mode == "payment" else None,
            currency="RUB",
            product_name="Monthly" if mode == "payment" else None,
            client_reference_id="checkout-1",
            metadata={"checkout_id": "checkout-1"},
            save_payment_method=True,
            success_url="http://testserver/ok",
            cancel_url="http://testserver/cancel",
            expires_at=NOW + timedelta(hours=1),
            locale="en",
            idempotency_key=key,
        )
    )
    return session.id


def charge(gateway: MemoryGateway, session_id: str, key: str = "renewal:1") -> OffSessionCharge:
    session = gateway.retrieve_checkout_session(session_id)
    card = gateway.retrieve_payment(session.payment_intent_id or "").payment_method_id
    return OffSessionCharge(
        customer_id=session.customer_id or "",
        payment_method_id=card or "",
        amount=39900,
        currency="RUB",
        description="renewal",
        metadata={},
        idempotency_key=key,
    )


def test_the_same_key_returns_the_same_page_and_another_request_with_it_is_refused(gateway):
    first = page(gateway)

    assert page(gateway) == first
    with pytest.raises(PermanentGatewayError) as refused:
        page(gateway, amount=100)
    assert refused.value.code == "idempotency_error"
    assert len(gateway.checkout_sessions()) == 1


@pytest.mark.parametrize(
    ("card", "outcome", "status"),
    [
        ("4242424242424242", "succeeded", "complete"),
        ("4000000000000002", "declined", "open"),
        ("4000002760003184", "requires_action", "open"),
    ],
)
def test_a_page_is_paid_or_not_as_the_sandbox_test_card_says(gateway, card, outcome, status):
    session_id = page(gateway)

    assert gateway.pay_checkout(session_id, card).outcome == outcome
    assert gateway.retrieve_checkout_session(session_id).status == status


def test_a_page_waiting_for_3d_secure_is_paid_once_authenticated(gateway):
    session_id = page(gateway)
    gateway.pay_checkout(session_id, "4000002760003184")

    assert gateway.authenticate_checkout(session_id).outcome == "succeeded"
    session = gateway.retrieve_checkout_session(session_id)
    assert (session.status, session.payment_status) == ("complete", "paid")


def test_a_setup_page_saves_the_card_with_its_fingerprint(gateway):
    session_id = page(gateway, mode="setup")
    gateway.pay_checkout(session_id, "4242 4242 4242 4242")

    session = gateway.retrieve_checkout_session(session_id)
    setup = gateway.retrieve_payment_method_setup(session.setup_intent_id or "")
    card = gateway.retrieve_payment_method(setup.payment_method_id or "")
    assert (session.payment_status, card.last4, len(card.fingerprint)) == ("no_payment_required", "4242", 16)


def test_an_off_session_charge_follows_the_saved_card_and_a_decline_replays_under_its_key(gateway):
    paid = page(gateway)
    gateway.pay_checkout(paid, "4242424242424242")
    assert gateway.charge_off_session(charge(gateway, paid)).status == "succeeded"

    declining = page(gateway, key="checkout:2")
    gateway.pay_checkout(declining, "4000000000000341")
    with pytest.raises(CardDeclined) as first:
        gateway.charge_off_session(charge(gateway, declining, key="renewal:2"))
    with pytest.raises(CardDeclined) as again:
        gateway.charge_off_session(charge(gateway, declining, key="renewal:2"))
    assert first.value.payment_intent_id == again.value.payment_intent_id
    assert first.value.decline_code == "generic_decline"


def test_an_off_session_charge_on_a_card_that_wants_3d_secure_needs_the_customer(gateway):
    session_id = page(gateway)
    gateway.pay_checkout(session_id, "4000002760003184")
    gateway.authenticate_checkout(session_id)

    with pytest.raises(AuthenticationRequired):
        gateway.charge_off_session(charge(gateway, session_id))


def test_refunds_never_exceed_what_was_paid(gateway):
    session_id = page(gateway)
    gateway.pay_checkout(session_id, "4242424242424242")
    intent_id = gateway.retrieve_checkout_session(session_id).payment_intent_id or ""

    gateway.create_refund(RefundRequest(intent_id, 30000, None, {}, "refund:1"))
    with pytest.raises(PermanentGatewayError) as too_much:
        gateway.create_refund(RefundRequest(intent_id, 10000, None, {}, "refund:2"))
    rest = gateway.create_refund(RefundRequest(intent_id, None, None, {}, "refund:3"))

    assert too_much.value.code == "amount_too_large"
    assert rest.amount == 9900


def test_a_page_past_its_time_reads_as_expired(gateway, wall):
    session_id = page(gateway)
    wall[0] = NOW + timedelta(hours=2)

    assert gateway.retrieve_checkout_session(session_id).status == "expired"
    assert gateway.pay_checkout(session_id, "4242424242424242").outcome == "unavailable"
