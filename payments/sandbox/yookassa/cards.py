"""YooKassa's documented test cards and what the sandbox does with each.

From YooKassa's testing docs ("Тестовые банковские карты"): any future expiry, any CVC and any
3-D Secure code. Card numbers are never stored: a card is kept as its BIN, last four digits,
expiry and type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TestCard:
    """How one test card behaves: succeeds (maybe after 3-D Secure) or is declined with a reason."""

    three_d_secure: bool = False
    decline_reason: str | None = None
    party: str = "payment_network"


_SUCCEEDS = (
    "5555555555554444",
    "4111111111111111",
    "2202474301322987",
    "6759649826438453",
    "4175001000000017",
    "370000000000002",
    "3528000700000000",
    "36700102000000",
)
_THREE_D_SECURE = ("5555555555554477", "4793128161644804", "2200000000000004")

# Mastercard, Visa and Mir cards per cancellation reason (declined by the payment network).
_DECLINES: dict[str, tuple[str, ...]] = {
    "3d_secure_failed": ("5555555555554592", "4839665499603842", "2200000000000012"),
    "call_issuer": ("5555555555554535", "4926946416239025", "2200000000000020"),
    "card_expired": ("5555555555554543", "4141435412630840", "2200000000000038"),
    "fraud_suspected": ("5555555555554568", "4483274282299972", "2200000000000046"),
    "general_decline": ("5555555555554527", "4889971706588753", "2202202212312379"),
    "insufficient_funds": ("5555555555554600", "4562265587712390", "2200000000000053"),
    "invalid_card_number": ("5555555555554618", "4951017853630544", "2201382000000013"),
    "invalid_csc": ("5555555555554626", "4194180666146368", "2200770212727079"),
    "issuer_unavailable": ("5555555555554501", "4654130848359150", "2201382000000021"),
    "payment_method_limit_exceeded": ("5555555555554576", "4565231022577548", "2201382000000039"),
    "payment_method_restricted": ("5555555555554550", "4233961169071671", "2201382000000047"),
}
# Declined by YooKassa itself (party yoo_money).
_YOO_MONEY_DECLINES: dict[str, tuple[str, ...]] = {
    "country_forbidden": ("5555555555554584", "4969751510013864", "2201382000000054"),
    "fraud_suspected": ("5555555555554634", "4119098878796485", "2201696981989955"),
}


def _table() -> dict[str, TestCard]:
    cards = {number: TestCard() for number in _SUCCEEDS}
    cards.update({number: TestCard(three_d_secure=True) for number in _THREE_D_SECURE})
    for reason, numbers in _DECLINES.items():
        cards.update({number: TestCard(decline_reason=reason) for number in numbers})
    for reason, numbers in _YOO_MONEY_DECLINES.items():
        cards.update({number: TestCard(decline_reason=reason, party="yoo_money") for number in numbers})
    return cards


TEST_CARDS = _table()


def card_type(number: str) -> str:
    """Return the card type YooKassa names for a number (`card.card_type`)."""
    if number.startswith("6759"):
        return "Maestro"
    if number.startswith("4"):
        return "Visa"
    if number.startswith("5"):
        return "MasterCard"
    if number.startswith("2"):
        return "Mir"
    if number.startswith(("34", "37")):
        return "AmericanExpress"
    if number.startswith("35"):
        return "JCB"
    if number.startswith("36"):
        return "DinersClub"
    return "Unknown"


def normalize(number: str) -> str:
    """Return a typed card number without spaces and dashes."""
    return "".join(ch for ch in number if ch not in " -")


def parse_expiry(text: str) -> tuple[str, str] | None:
    """Return ("MM", "YYYY") from "MM / YY", "MM/YY" or "MM/YYYY", or None when unreadable."""
    parts = [part.strip() for part in text.split("/")]
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        return None
    month, year = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        return None
    if year < 100:
        year += 2000
    return f"{month:02d}", str(year)
