"""Secrets, tokens, emails and card numbers are removed from text and data; ordinary figures stay."""

import pytest

from core.scrubbing import FILTERED, luhn_valid, scrub_data, scrub_text

# Test card numbers of the card schemes (all pass Luhn), as viewers type them.
CARDS = [
    "4242424242424242",  # Visa
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    "5555 5555 5555 4444",  # Mastercard
    "3782 822463 10005",  # American Express, 15 digits in 4-6-5
    "2200 0000 0000 0004",  # Mir
    "6011111111111117",  # Discover
    "6222 0200 0000 0000 000",  # 19 digits (UnionPay)
    "4222222222222",  # 13 digits
]


@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_that_pass_luhn_are_removed(card):
    scrubbed = scrub_text(f"declined: card {card} expired")
    assert scrubbed == f"declined: card {FILTERED} expired"


def test_a_card_number_next_to_its_expiry_or_a_date_is_removed_and_they_stay():
    assert scrub_text("4242 4242 4242 4242 12 34") == f"{FILTERED} 12 34"
    assert scrub_text("on 2026-11-20 4111-1111-1111-1111") == f"on 2026-11-20 {FILTERED}"


@pytest.mark.parametrize(
    "text",
    [
        "amount 199900 RUB, refunded 39900",
        "payment 7d2c4a3e-9b1f-4f53-a0a4-0d6f2b3c9e41 of subscription 42",
        # 16 digits that fail Luhn: an order number, not a card.
        "order 4242424242424241",
        # Longer than any card number: a provider's reference.
        "reference 12345678901234567890123",
        "at 2026-11-20 12:00:01,123 after 1732000000 seconds",
        "idempotency key renewal:7d2c4a3e-9b1f-4f53-a0a4-0d6f2b3c9e41:20261120T000000Z:1",
        "ch_3MtwBwLkdIwHu7ix28a3tqPa pi_3MtwBwLkdIwHu7ix28a3tqPa cs_test_a1b2c3",
    ],
)
def test_ordinary_ids_amounts_and_dates_are_kept(text):
    assert scrub_text(text) == text


@pytest.mark.parametrize(
    ("text", "secret", "scrubbed"),
    [
        ("refused sk_live_51HxYzAbCdEfGhIjKlMnOp", "51HxYz", "refused [Filtered]"),
        ("restricted rk_test_51HxYzAbCdEfGhIj", "51HxYz", "restricted [Filtered]"),
        ("signing secret whsec_5f8a3c2b1d9e7f6a", "5f8a3c", "signing secret [Filtered]"),
        ("confirm pi_3MtwBw2eZvKYlo2C_secret_YrKJUKribcBjcG8HVhf", "YrKJUK", "confirm [Filtered]"),
        ("YooKassa live_Fh8hUAVVBGUGbjmlzba6TB0iyUbos_lueTHE-axOwM0", "Fh8hUA", "YooKassa [Filtered]"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "eyJhbG",
            "Authorization: Bearer [Filtered]",
        ),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln expired", "eyJhbG", "token [Filtered] expired"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcj", "Basic [Filtered]"),
        ("mail to ivan.petrov+films@example.co.uk", "petrov", "mail to [Filtered]"),
        ("POST /login password=hunter2&next=/", "hunter2", "POST /login password=[Filtered]&next=/"),
        ('{"client_secret": "abc123"}', "abc123", '{"client_secret": "[Filtered]"}'),
        ("X-Service-Key: svc-7f3a", "svc-7f3a", "X-Service-Key: [Filtered]"),
        (
            "Stripe-Signature: t=1,v1=5257a869e7ecebeda32affa6",
            "5257a8",
            "Stripe-Signature: [Filtered],[Filtered]",
        ),
    ],
)
def test_secrets_in_text_are_replaced(text, secret, scrubbed):
    assert scrub_text(text) == scrubbed
    assert secret not in scrub_text(text)


def test_a_secret_setting_filtered_by_shape_is_not_half_filtered_by_name():
    assert scrub_text("STRIPE_SECRET_KEY=sk_live_51HxYzAbC") == f"STRIPE_SECRET_KEY={FILTERED}"


def test_values_under_sensitive_keys_are_replaced_whole_and_other_keys_kept():
    data = {
        "headers": {
            "Authorization": "Token 8f3a",
            "Cookie": "sessionid=abc",
            "X-Service-Key": "svc-1",
            "Stripe-Signature": "t=1,v1=00",
            "X-Request-ID": "req-1",
        },
        "password": "hunter2",
        "email": "ivan@example.com",
        "subscription_id": "7d2c4a3e",
        "idempotency_key": "refund:42",
        "amount": 199900,
        "card": 4242424242424242,
        "pairs": [["X-Service-Key", "svc-2"], ["Host", "billing.example.com"]],
        "empty_token": "",
    }
    assert scrub_data(data) == {
        "headers": {
            "Authorization": FILTERED,
            "Cookie": FILTERED,
            "X-Service-Key": FILTERED,
            "Stripe-Signature": FILTERED,
            "X-Request-ID": "req-1",
        },
        "password": FILTERED,
        "email": FILTERED,
        "subscription_id": "7d2c4a3e",
        "idempotency_key": "refund:42",
        "amount": 199900,
        "card": FILTERED,
        "pairs": [["X-Service-Key", FILTERED], ["Host", "billing.example.com"]],
        "empty_token": "",
    }


def test_nested_text_is_scrubbed_at_any_depth_and_other_objects_left_alone():
    marker = object()
    data = {"a": [{"b": ("paid with 4242 4242 4242 4242", marker, True, 3.5)}]}
    assert scrub_data(data) == {"a": [{"b": [f"paid with {FILTERED}", marker, True, 3.5]}]}


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
