"""Remove secrets, tokens, emails and card numbers from text and data before they leave the process.

Error reports (config/sentry.py) and log lines (config/logging.py) pass through here, so a
provider's key in an exception message, a viewer's token in a request header or a card number
a viewer typed into the wrong field never reaches Sentry or the log collector. Two rules apply:

- by name: the value of any key that names a secret (`password`, `*secret*`, `*token*`,
  `Authorization`, `Cookie`, `X-Service-Key`, `Stripe-Signature`, `email`, ...) is replaced whole;
- by shape: in any text, provider keys (Stripe `sk_`/`rk_`/`whsec_`, client secrets, YooKassa's
  `live_`/`test_` keys), bearer and basic credentials, JWTs, private keys, `name=value` pairs
  whose name is a secret, email addresses, and 13-19 digit runs that pass the Luhn check (with
  or without spaces or dashes) are replaced where they stand.

Pure functions of their input: no Django, no app, so anything may use them. They err towards
removing too much: a 16-digit number that happens to pass Luhn is filtered as a card would be.
"""

import re
from collections.abc import Callable, Mapping
from typing import Any

FILTERED = "[Filtered]"

# Keys whose value is a secret or personal data, whatever it looks like. Matched anywhere in the
# key, case-insensitive: `STRIPE_SECRET_KEY`, `client_secret`, `HTTP_AUTHORIZATION`, `csrftoken`.
SENSITIVE_KEY = re.compile(
    r"password|passwd|passphrase|secret|token|authori[sz]ation|^auth$|cookie|^sessionid$|session[-_]?key|csrf"
    r"|signature|api[-_]?key|service[-_]?key|private[-_]?key|access[-_]?key|credential|jwt"
    r"|^dsn$|e-?mail|^cvc$|^cvv|card[-_]?number|^pan$",
    re.IGNORECASE,
)

# Shapes of secrets in free text (applied in `_TEXT_RULES` order: whole credentials go before
# the `name=value` rule, which would otherwise keep half of them).
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_STRIPE_KEY = re.compile(r"\b(?:sk|rk)_(?:live|test)_\w+|\bwhsec_\w+")
# A PaymentIntent's or SetupIntent's client secret lets its holder confirm the payment.
_CLIENT_SECRET = re.compile(r"\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+")
# YooKassa's secret keys: `live_` or `test_` and a long base64url string (with a digit in it,
# which keeps ordinary snake_case words such as `test_renewal_...` out).
_YOOKASSA_KEY = re.compile(r"\b(?:live|test)_(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{32,}")
# A Stripe-Signature header's signatures (`v1=5257a8...`).
_SIGNATURE = re.compile(r"\bv[01]=[0-9a-f]{16,}")
# `password=...`, `"client_secret": "..."`, `token: ...`: the name stays, the value goes.
_NAMED_SECRET = re.compile(
    r"((?:password|passwd|secret|token|api[_-]?key|service[_-]?key|signature|sessionid|csrftoken)"
    r"[\w-]*[\"']?\s*[=:]\s*[\"']?)(?!\[Filtered\])([^\s&\"',;}\]]+)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of at least 13 digits, single spaces or dashes allowed between them; not the decimals
# of a number (a duration of 0.0001110659999312702 s is no card).
_DIGIT_RUN = re.compile(r"(?<![\d.])(?<!\d[ -])\d(?:[ -]?\d){12,}")
_SEPARATOR = re.compile(r"([ -])")

CARD_DIGITS = range(13, 20)
# Nested data deeper than this is replaced whole rather than walked.
MAX_DEPTH = 32


def luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn check that every card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return len(digits) in CARD_DIGITS and luhn_valid(digits)


def _card_end(groups: list[str], start: int) -> int | None:
    """Return the end of the consecutive groups from `start` that make a card number, if any."""
    digits = ""
    for end in range(start + 1, len(groups) + 1):
        digits += groups[end - 1]
        if len(digits) > CARD_DIGITS[-1]:
            return None
        if _is_card_number(digits):
            return end
    return None


def _mask_cards(match: re.Match[str]) -> str:
    run = match.group()
    parts = _SEPARATOR.split(run)  # [group, separator, group, ...]
    groups = parts[::2]
    if _is_card_number("".join(groups)):
        return FILTERED
    # A longer run (a card number next to a date, an amount or its expiry): look for
    # consecutive groups that together make a card number.
    masked: list[str] = []
    start = 0
    while start < len(groups):
        end = _card_end(groups, start)
        masked.append(groups[start] if end is None else FILTERED)
        start = start + 1 if end is None else end
        if start < len(groups):
            masked.append(parts[2 * start - 1])
    return "".join(masked)


def _keep_scheme(match: re.Match[str]) -> str:
    return f"{match.group(1)} {FILTERED}"


def _keep_name(match: re.Match[str]) -> str:
    return match.group(1) + FILTERED


# Each shape, with the words (lower case) without one of which it cannot match: a line that has
# none of them skips the pattern, which keeps a log line's scrubbing to microseconds.
_TEXT_RULES: tuple[tuple[tuple[str, ...], re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (("private key",), _PRIVATE_KEY, FILTERED),
    (("bearer", "basic"), _AUTH_SCHEME, _keep_scheme),
    (("eyj",), _JWT, FILTERED),
    (("sk_", "rk_", "whsec_"), _STRIPE_KEY, FILTERED),
    (("_secret_",), _CLIENT_SECRET, FILTERED),
    (("live_", "test_"), _YOOKASSA_KEY, FILTERED),
    (("v0=", "v1="), _SIGNATURE, FILTERED),
    (("pass", "secret", "token", "key", "signature", "session", "csrf"), _NAMED_SECRET, _keep_name),
    (("@",), _EMAIL, FILTERED),
)


def scrub_text(text: str) -> str:
    """Return `text` with every secret, credential, email address and card number replaced."""
    lowered = text.lower()
    for hints, pattern, replacement in _TEXT_RULES:
        if any(hint in lowered for hint in hints):
            text = pattern.sub(replacement, text)
    return _DIGIT_RUN.sub(_mask_cards, text)


def is_sensitive_key(key: object) -> bool:
    """Return whether a key (a header, a variable, a field) names a value that must not be shown."""
    return isinstance(key, str) and SENSITIVE_KEY.search(key) is not None


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple | dict) and not value)


def scrub_data(value: Any, *, depth: int = 0) -> Any:
    """Return a copy of JSON-like data (dicts, lists, strings, numbers) with nothing sensitive in it.

    Values under sensitive keys are replaced whole; every string is scrubbed by shape; an
    integer that is a card number is replaced. `[name, value]` pairs (headers as lists) count
    as keys and values; tuples come back as lists. Other objects are returned as they are.
    """
    if depth > MAX_DEPTH:
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return FILTERED if _is_card_number(str(abs(value))) else value
    if isinstance(value, Mapping):
        return {
            (scrub_text(key) if isinstance(key, str) else key): (
                FILTERED
                if is_sensitive_key(key) and not _is_empty(item)
                else scrub_data(item, depth=depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        if len(value) == 2 and is_sensitive_key(value[0]) and not _is_empty(value[1]):
            return [value[0], FILTERED]
        return [scrub_data(item, depth=depth + 1) for item in value]
    return value
