"""Stripe's documented test cards and what each does on-session and off-session.

The sandbox never keeps a card number: it reads the number once, finds the test card
it names, and from then on only the brand, last four digits, expiry and a one-way
fingerprint exist. The behaviour of a saved card is remembered by its test-card name.
"""

import hashlib
import re
import string
from dataclasses import dataclass

# What a payment attempt with the card does.
SUCCEED = "succeed"
AUTHENTICATE = "authenticate"  # on-session: ask the viewer to complete 3D Secure
AUTHENTICATION_REQUIRED = "authentication_required"  # off-session: soft decline
GENERIC_DECLINE = "generic_decline"
INSUFFICIENT_FUNDS = "insufficient_funds"
EXPIRED_CARD = "expired_card"

DECLINES = {
    GENERIC_DECLINE: ("card_declined", "Your card was declined."),
    INSUFFICIENT_FUNDS: ("card_declined", "Your card has insufficient funds."),
    EXPIRED_CARD: ("expired_card", "Your card has expired."),
    AUTHENTICATION_REQUIRED: (
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}


@dataclass(frozen=True)
class TestCard:
    """One of Stripe's test card numbers, by the name the sandbox remembers it under."""

    name: str
    brand: str
    funding: str
    on_session: str
    off_session: str
    cvc_length: int = 3


_CARDS: dict[str, TestCard] = {
    "4242424242424242": TestCard("visa", "visa", "credit", SUCCEED, SUCCEED),
    "4000056655665556": TestCard("visa_debit", "visa", "debit", SUCCEED, SUCCEED),
    "5555555555554444": TestCard("mastercard", "mastercard", "credit", SUCCEED, SUCCEED),
    "378282246310005": TestCard("amex", "amex", "credit", SUCCEED, SUCCEED, cvc_length=4),
    "4000000000000002": TestCard("declined", "visa", "credit", GENERIC_DECLINE, GENERIC_DECLINE),
    "4000000000009995": TestCard(
        "insufficient_funds", "visa", "credit", INSUFFICIENT_FUNDS, INSUFFICIENT_FUNDS
    ),
    "4000000000000069": TestCard("expired_card", "visa", "credit", EXPIRED_CARD, EXPIRED_CARD),
    "4000002760003184": TestCard(
        "authenticate_always", "visa", "credit", AUTHENTICATE, AUTHENTICATION_REQUIRED
    ),
    # Saving it works (the checkout payment succeeds); every later off-session charge fails.
    "4000000000000341": TestCard("attach_then_decline", "visa", "credit", SUCCEED, GENERIC_DECLINE),
}
_BY_NAME = {card.name: card for card in _CARDS.values()}

TEST_CARD_NUMBERS = {number: card.name for number, card in _CARDS.items()}

_FINGERPRINT_ALPHABET = string.ascii_letters + string.digits


class CardInputError(Exception):
    """What the viewer typed is not a usable card; nothing was attempted."""

    def __init__(self, message: str, code: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


@dataclass(frozen=True)
class CardDetails:
    """What the sandbox keeps of a card: never the number."""

    test_card: TestCard
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


def card_by_name(name: str) -> TestCard:
    """Return the test card a saved PaymentMethod was made from."""
    return _BY_NAME[name]


def read_card(number: str, exp: str, cvc: str, *, now_year: int, now_month: int) -> CardDetails:
    """Validate what the viewer typed and return the card's safe details."""
    digits = re.sub(r"[\s-]", "", number or "")
    test_card = _CARDS.get(digits)
    if test_card is None:
        raise CardInputError("Your card number is incorrect.", "incorrect_number", "card_number")
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", exp or "")
    if not match or not 1 <= int(match.group(1)) <= 12:
        raise CardInputError("Your card's expiration date is incomplete.", "incomplete_expiry", "exp")
    exp_month = int(match.group(1))
    exp_year = int(match.group(2))
    if exp_year < 100:
        exp_year += 2000
    if (exp_year, exp_month) < (now_year, now_month):
        raise CardInputError("Your card's expiration date is in the past.", "invalid_expiry_year", "exp")
    if not re.fullmatch(rf"\d{{{test_card.cvc_length}}}", (cvc or "").strip()):
        raise CardInputError("Your card's security code is incomplete.", "incomplete_cvc", "cvc")
    return CardDetails(
        test_card=test_card,
        last4=digits[-4:],
        exp_month=exp_month,
        exp_year=exp_year,
        fingerprint=fingerprint(digits),
    )


def fingerprint(digits: str) -> str:
    """Return a stable 16-character fingerprint, the same for the same number, like Stripe's."""
    value = int.from_bytes(hashlib.sha256(b"sandbox-card:" + digits.encode()).digest()[:12], "big")
    chars = []
    for _ in range(16):
        value, index = divmod(value, len(_FINGERPRINT_ALPHABET))
        chars.append(_FINGERPRINT_ALPHABET[index])
    return "".join(chars)


def default_cvc(number: str) -> str:
    """Return a CVC of the right length for a test card number (control API convenience)."""
    test_card = _CARDS.get(re.sub(r"[\s-]", "", number or ""))
    return "1234" if test_card and test_card.cvc_length == 4 else "123"
