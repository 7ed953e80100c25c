"""Each provider's clearing balance in our books next to the balance the provider reports now.

`provider_clearing:<provider>` is what our books say the provider holds for us; the provider's
own balance (available plus pending) is what it says it holds. They agree once everything the
provider booked is in our books, and they can differ for reasons that are not errors:

- fees and payouts are posted by the daily settlement job (`provider_settlement_post`) from the
  provider's ledger lines, a day or so after the money moved: until then the books hold more
  than the provider, by the fees taken and the money paid out;
- payments in flight: a charge the provider has taken but whose payment we have not marked
  paid yet (its webhook or checkout sync still on the way), or a refund the provider has made
  and we have not recorded yet, is on one side only;
- settlement currency: the books hold a payment in the currency it was paid in, while a
  provider that settles into another currency reports the money converted, so one currency
  shows money the provider lacks and another money the books lack.

A difference that stays after the settlement job has run for the days in question, and with no
payment or refund left open, is one to look into.

The provider can only be read as it is now, so the comparison means something only for the
books as they are now too: `at` is the moment the books are read at, and callers pass the
present (the report pages show the provider's side only for "now").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured

from ledger.selectors import clearing_balances
from payments.gateways import configured_providers, get_gateway
from payments.gateways.base import ProviderBalance
from payments.gateways.errors import GatewayError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderBalanceRow:
    """One provider's money in one currency: our clearing balance and what the provider reports.

    When the provider could not be read, `unreadable` says why and its figures are None; the
    books' side is still shown. `currency` is empty only for a provider that could not be read
    and has nothing in our books either.
    """

    provider: str
    currency: str
    books: int
    available: int | None = None
    pending: int | None = None
    unreadable: str = ""

    @property
    def reported(self) -> int | None:
        """Return all the provider says it holds in the currency (available and pending), if it was read."""
        if self.available is None or self.pending is None:
            return None
        return self.available + self.pending

    @property
    def difference(self) -> int | None:
        """Return the books less the provider: positive when the books hold more (e.g. fees not posted yet)."""
        reported = self.reported
        return None if reported is None else self.books - reported

    @property
    def agrees(self) -> bool:
        """Return whether the provider was read and reports exactly what the books hold."""
        return self.difference == 0


def provider_balance_comparison(*, at: datetime) -> list[ProviderBalanceRow]:
    """Return, per provider and currency, the books' clearing balance at `at` next to the provider's now.

    Every configured provider is read (`retrieve_balance`), and every provider our books hold
    money for (one no longer configured is reported as unreadable). Each currency either side
    has gets a row; a side without it counts zero. A provider that fails to answer gives rows
    that say so instead of raising: one failing provider must not hide the others.
    """
    books: dict[str, dict[str, int]] = {}
    for line in clearing_balances(at=at):
        books.setdefault(line.provider, {})[line.currency] = line.amount
    rows: list[ProviderBalanceRow] = []
    for provider in sorted(configured_providers().keys() | books.keys()):
        rows.extend(_provider_rows(provider, books.get(provider, {})))
    return rows


def _provider_rows(provider: str, books: dict[str, int]) -> list[ProviderBalanceRow]:
    try:
        reported = _read_balance(provider)
    except _Unreadable as exc:
        held = sorted(books.items()) or [("", 0)]
        return [
            ProviderBalanceRow(provider=provider, currency=currency, books=amount, unreadable=exc.reason)
            for currency, amount in held
        ]
    return [
        ProviderBalanceRow(
            provider=provider,
            currency=currency,
            books=books.get(currency, 0),
            available=reported[currency].available if currency in reported else 0,
            pending=reported[currency].pending if currency in reported else 0,
        )
        for currency in sorted(books.keys() | reported.keys())
    ]


class _Unreadable(Exception):
    """A provider whose balance could not be read, and why, in words staff can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _read_balance(provider: str) -> dict[str, ProviderBalance]:
    """Return the provider's balance by currency; raise _Unreadable with the reason when it cannot be read."""
    try:
        balances = get_gateway(provider).retrieve_balance()
    except GatewayError as exc:
        # Unreachable for a moment, refused, or an answer we cannot read: the page says so and
        # reloading it asks again; the log keeps the details for whoever looks into it.
        logger.warning("could not read %s's balance: %r", provider, exc)
        raise _Unreadable(exc.message) from exc
    except ImproperlyConfigured as exc:
        # A provider the books hold money for that is no longer configured, or one whose
        # gateway lacks its settings.
        logger.warning("could not read %s's balance: %s", provider, exc)
        raise _Unreadable(str(exc)) from exc
    return {balance.currency: balance for balance in balances}
