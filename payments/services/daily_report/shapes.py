"""The reconciliation report's data shapes: what it found, per currency and per difference.

A report (`ReconciliationReport`) of a range of UTC days holds the totals of both sides per
currency (`CurrencyTotals`), every difference between a record of ours and Stripe's
(`Mismatch`, of one of the kinds below), and the charges the unbooked-charges job fixed.
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.money import format_money

PAYMENT, REFUND = "payment", "refund"

MISSING_AT_STRIPE = "missing_at_stripe"
MISSING_WITH_US = "missing_with_us"
OTHER_DAY = "other_day"
STATUS_DIFFERS = "status_differs"
AMOUNT_DIFFERS = "amount_differs"
CURRENCY_DIFFERS = "currency_differs"
REFUNDED_DIFFERS = "refunded_differs"
BALANCE_TRANSACTION_MISSING = "balance_transaction_missing"
BALANCE_TRANSACTION_DIFFERS = "balance_transaction_differs"

MISMATCH_LABELS: dict[str, Promise] = {
    MISSING_AT_STRIPE: _("missing at Stripe"),
    MISSING_WITH_US: _("missing with us"),
    OTHER_DAY: _("dated another day"),
    STATUS_DIFFERS: _("status differs"),
    AMOUNT_DIFFERS: _("amount differs"),
    CURRENCY_DIFFERS: _("currency differs"),
    REFUNDED_DIFFERS: _("refunded amount differs"),
    BALANCE_TRANSACTION_MISSING: _("balance transaction missing"),
    BALANCE_TRANSACTION_DIFFERS: _("balance transaction amount differs"),
}
OBJECT_LABELS: dict[str, Promise] = {PAYMENT: _("payment"), REFUND: _("refund")}


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference between our record and Stripe's; `ours`/`stripe` say what each side has."""

    kind: str
    object_type: str
    our_id: str | None
    stripe_id: str | None
    ours: str
    stripe: str

    @property
    def label(self) -> str:
        return str(MISMATCH_LABELS[self.kind])

    @property
    def object_label(self) -> str:
        return str(OBJECT_LABELS[self.object_type])


@dataclass(slots=True)
class CurrencyTotals:
    """One currency's day on both sides, in minor units.

    Ours: gross taken, refunded, and net (gross minus refunds; Stripe's fees are not known to
    us). Stripe's: gross charged and refunded, then fees and net from the balance transactions.
    """

    currency: str
    our_payments: int = 0
    our_gross: int = 0
    our_refunds: int = 0
    stripe_charges: int = 0
    stripe_gross: int = 0
    stripe_refunds: int = 0
    stripe_fees: int = 0
    stripe_net: int = 0

    @property
    def our_net(self) -> int:
        return self.our_gross - self.our_refunds

    # As people read them ("399.00 RUB"), for the admin page and the command.
    @property
    def our_gross_money(self) -> str:
        return format_money(self.our_gross, self.currency)

    @property
    def our_refunds_money(self) -> str:
        return format_money(self.our_refunds, self.currency)

    @property
    def our_net_money(self) -> str:
        return format_money(self.our_net, self.currency)

    @property
    def stripe_gross_money(self) -> str:
        return format_money(self.stripe_gross, self.currency)

    @property
    def stripe_refunds_money(self) -> str:
        return format_money(self.stripe_refunds, self.currency)

    @property
    def stripe_fees_money(self) -> str:
        return format_money(self.stripe_fees, self.currency)

    @property
    def stripe_net_money(self) -> str:
        return format_money(self.stripe_net, self.currency)


@dataclass(slots=True)
class ReconciliationReport:
    """What the report found for a range of UTC days (both ends included)."""

    date_from: date
    date_to: date
    totals: list[CurrencyTotals] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    # Charges of the day our rows had missed, and what the unbooked-charges job did about each
    # (`reconciliation.reconcile_unbooked_charges`): listed here instead of as mismatches.
    fixed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        return not self.mismatches

    @property
    def is_one_day(self) -> bool:
        return self.date_from == self.date_to
