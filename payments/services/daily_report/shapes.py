"""The reconciliation report's data shapes: what it found, per currency and per difference.

A report (`ReconciliationReport`) of a range of UTC days and one provider holds the totals of
both sides per currency (`CurrencyTotals`), every difference between a record of ours and the
provider's (`Mismatch`, of one of the kinds below), and the charges the unbooked-charges job
fixed. Labels name the provider by its display name (`provider_label`).
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from payments.models import Provider

PAYMENT, REFUND = "payment", "refund"

MISSING_AT_PROVIDER = "missing_at_provider"
MISSING_WITH_US = "missing_with_us"
OTHER_DAY = "other_day"
STATUS_DIFFERS = "status_differs"
AMOUNT_DIFFERS = "amount_differs"
CURRENCY_DIFFERS = "currency_differs"
REFUNDED_DIFFERS = "refunded_differs"
# The provider's ledger (its balance) has no entry for a charge or refund, or one of another amount.
BALANCE_ENTRY_MISSING = "balance_entry_missing"
BALANCE_ENTRY_DIFFERS = "balance_entry_differs"

# `%(provider)s` is the provider's display name, as staff know it.
MISMATCH_LABELS: dict[str, Promise] = {
    MISSING_AT_PROVIDER: _("missing at %(provider)s"),
    MISSING_WITH_US: _("missing with us"),
    OTHER_DAY: _("dated another day"),
    STATUS_DIFFERS: _("status differs"),
    AMOUNT_DIFFERS: _("amount differs"),
    CURRENCY_DIFFERS: _("currency differs"),
    REFUNDED_DIFFERS: _("refunded amount differs"),
    BALANCE_ENTRY_MISSING: _("balance entry missing at %(provider)s"),
    BALANCE_ENTRY_DIFFERS: _("balance entry amount differs at %(provider)s"),
}
OBJECT_LABELS: dict[str, Promise] = {PAYMENT: _("payment"), REFUND: _("refund")}


def provider_label(provider: str) -> str:
    """Return the name staff know a provider by (its label); its name when it has no label."""
    return str(dict(Provider.choices).get(provider, provider))


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference between our record and the provider's; `ours`/`theirs` say what each side has.

    `our_id` is our row's id, `their_id` the provider's id of its charge or refund.
    """

    kind: str
    object_type: str
    our_id: str | None
    their_id: str | None
    ours: str
    theirs: str
    provider: str

    @property
    def label(self) -> str:
        return str(MISMATCH_LABELS[self.kind]) % {"provider": provider_label(self.provider)}

    @property
    def object_label(self) -> str:
        return str(OBJECT_LABELS[self.object_type])


@dataclass(slots=True)
class CurrencyTotals:
    """One currency's day on both sides, in minor units.

    Ours: gross taken, refunded, and net (gross minus refunds; the provider's fees are not known
    to us). The provider's: gross charged and refunded, then fees and net from its ledger.
    """

    currency: str
    our_payments: int = 0
    our_gross: int = 0
    our_refunds: int = 0
    provider_charges: int = 0
    provider_gross: int = 0
    provider_refunds: int = 0
    provider_fees: int = 0
    provider_net: int = 0

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
    def provider_gross_money(self) -> str:
        return format_money(self.provider_gross, self.currency)

    @property
    def provider_refunds_money(self) -> str:
        return format_money(self.provider_refunds, self.currency)

    @property
    def provider_fees_money(self) -> str:
        return format_money(self.provider_fees, self.currency)

    @property
    def provider_net_money(self) -> str:
        return format_money(self.provider_net, self.currency)


@dataclass(slots=True)
class ReconciliationReport:
    """What the report found for a range of UTC days (both ends included) and one provider."""

    date_from: date
    date_to: date
    provider: str
    totals: list[CurrencyTotals] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    # Charges of the day our rows had missed, and what the unbooked-charges job did about each
    # (`reconciliation.reconcile_unbooked_charges`): listed here instead of as mismatches.
    fixed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def provider_label(self) -> str:
        return provider_label(self.provider)

    @property
    def is_clean(self) -> bool:
        return not self.mismatches

    @property
    def is_one_day(self) -> bool:
        return self.date_from == self.date_to
