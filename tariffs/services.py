"""The catalogue as managers write it: tariffs and promo codes, their rules stated once.

How a code is used when a viewer subscribes (checked, counted, given back) is billing's
business: billing/promotions.py.
"""

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from core.money import CURRENCY_CODE_REGEX
from tariffs.models import (
    PROMO_CODE_REGEX,
    PROVIDER_CURRENCIES,
    PROVIDER_NAMES,
    PromoCode,
    PromoDuration,
    PromoKind,
    Tariff,
)
from tariffs.money_entry import MAX_ENTRY_MINOR_UNITS
from tariffs.selectors import promo_code_normalize

# --- The catalogue as managers write it ------------------------------------------------
#
# The rules a tariff and a promo code keep, stated once: the admin forms call the `*_clean`
# functions to show what is wrong field by field, and save through the `*_save` ones, which
# check again inside their transaction.


def _codes(promos: Iterable[PromoCode]) -> str:
    return ", ".join(sorted(promo.code for promo in promos))


def _fixed_codes_in_other_currencies(tariff: Tariff) -> list[PromoCode]:
    """Return the fixed-amount codes that apply to the tariff but take another currency off.

    A code applies to the tariffs selected on it; one with none selected applies to every
    active tariff.
    """
    fixed = PromoCode.objects.filter(kind=PromoKind.FIXED).exclude(currency=tariff.currency)
    applying = Q(tariffs=tariff) if tariff.pk is not None else Q(pk__in=[])
    if tariff.is_active:
        applying |= Q(tariffs__isnull=True, is_active=True)
    return list(fixed.filter(applying).distinct().order_by("code"))


def tariff_clean(*, tariff: Tariff) -> None:
    """Normalise a tariff about to be saved and raise ValidationError (by field) for each rule it breaks.

    Price: above zero, at most MAX_ENTRY_MINOR_UNITS, in a three-letter ISO 4217 currency that
    its provider takes (YooKassa: RUB only, `PROVIDER_CURRENCIES`); at least one period unit per
    charge; and no fixed-amount promo code applying to it may take another currency off.
    """
    tariff.currency = tariff.currency.strip().upper()
    errors: dict[str, list[ValidationError]] = {}
    if not re.fullmatch(CURRENCY_CODE_REGEX, tariff.currency):
        errors["currency"] = [
            ValidationError(_("Enter a three-letter ISO 4217 code, e.g. RUB."), code="invalid")
        ]
    elif others := _fixed_codes_in_other_currencies(tariff):
        errors["currency"] = [
            ValidationError(
                _(
                    "Fixed-amount promo codes in another currency apply to this tariff: %(codes)s. "
                    "Limit them to tariffs in their currency first."
                ),
                code="promo_currency",
                params={"codes": _codes(others)},
            )
        ]
    required_currency = PROVIDER_CURRENCIES.get(tariff.payment_provider)
    if required_currency and "currency" not in errors and tariff.currency != required_currency:
        errors["provider"] = [
            ValidationError(
                _(
                    "%(provider)s takes payments in %(currency)s only: set the currency to %(currency)s or choose another provider."
                ),
                code="provider_currency",
                params={
                    "provider": PROVIDER_NAMES.get(tariff.payment_provider, tariff.payment_provider),
                    "currency": required_currency,
                },
            )
        ]
    if tariff.amount is None or not 0 < tariff.amount <= MAX_ENTRY_MINOR_UNITS:
        errors["amount"] = [ValidationError(_("Enter a price above zero."), code="not_positive")]
    if tariff.period_count is None or tariff.period_count < 1:
        errors["period_count"] = [ValidationError(_("Enter at least 1."), code="min_value")]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def tariff_save(*, tariff: Tariff) -> Tariff:
    """Save a new or changed tariff once it keeps the catalogue's rules (`tariff_clean`).

    A new price applies to new subscriptions only: each subscription keeps the amount it
    was started with.
    """
    if tariff.pk is not None:
        # Queues behind a promo code being saved for this tariff (`promo_code_save`), so the
        # currency check below sees the code's tariffs as committed.
        Tariff.objects.select_for_update().filter(pk=tariff.pk).first()
    tariff_clean(tariff=tariff)
    tariff.save()
    return tariff


@transaction.atomic
def tariff_set_active(*, tariffs: QuerySet[Tariff], active: bool) -> list[Tariff]:
    """Activate or deactivate tariffs; return those whose state changed.

    Each row is saved on its own (not one UPDATE), so the audit log records every change
    with the staff member who made it. Activating a tariff that a fixed-amount promo code
    in another currency applies to raises ValidationError, and changes nothing.
    """
    changed = list(tariffs.select_for_update().exclude(is_active=active).order_by("pk"))
    if active:
        for tariff in changed:
            tariff.is_active = True
            if others := _fixed_codes_in_other_currencies(tariff):
                raise ValidationError(
                    _(
                        "%(tariff)s: fixed-amount promo codes in another currency apply to it: "
                        "%(codes)s. Limit them to tariffs in their currency first."
                    ),
                    code="promo_currency",
                    params={"tariff": tariff.name, "codes": _codes(others)},
                )
    for tariff in changed:
        tariff.is_active = active
        tariff.save(update_fields=["is_active", "updated_at"])
    return changed


def promo_code_clean(*, promo: PromoCode, tariffs: Iterable[Tariff]) -> None:
    """Normalise a promo code about to be saved and raise ValidationError (by field) for each rule it breaks.

    `tariffs` are those it will apply to (none: every active tariff). The fields its kind
    and duration do not use are cleared. A fixed amount is in the currency of every tariff
    it applies to.
    """
    promo.code = promo_code_normalize(promo.code)
    promo.currency = promo.currency.strip().upper()
    errors: dict[str, list[ValidationError]] = {}

    def refuse(field: str, message: Any, code: str, **params: Any) -> None:
        errors.setdefault(field, []).append(ValidationError(message, code=code, params=params or None))

    if not re.fullmatch(PROMO_CODE_REGEX, promo.code):
        refuse(
            "code",
            _("Use 3 to 64 letters (A-Z), digits, '-' or '_', starting with a letter or digit."),
            "invalid",
        )
    if promo.kind == PromoKind.PERCENT:
        promo.amount_off, promo.currency = None, ""
        if promo.percent_off is None or not 1 <= promo.percent_off <= 100:
            refuse("percent_off", _("Enter a percent from 1 to 100."), "invalid")
    elif promo.kind == PromoKind.FIXED:
        promo.percent_off = None
        if not re.fullmatch(CURRENCY_CODE_REGEX, promo.currency):
            refuse(
                "currency", _("A fixed amount needs its three-letter ISO 4217 currency, e.g. RUB."), "invalid"
            )
        else:
            selected = list(tariffs)
            applies_to = selected or list(Tariff.objects.filter(is_active=True))
            others = sorted({t.name for t in applies_to if t.currency != promo.currency})
            if others:
                message = (
                    _("The amount is in %(currency)s, but these tariffs are not: %(tariffs)s.")
                    if selected
                    else _(
                        "The amount is in %(currency)s, but not every tariff is (%(tariffs)s): "
                        "select the tariffs in %(currency)s it applies to."
                    )
                )
                refuse(
                    "currency", message, "other_currency", currency=promo.currency, tariffs=", ".join(others)
                )
        if promo.amount_off is None or not 0 < promo.amount_off <= MAX_ENTRY_MINOR_UNITS:
            refuse("amount_off", _("Enter an amount above zero."), "not_positive")
    if promo.duration == PromoDuration.REPEATING:
        if not promo.duration_periods:
            refuse("duration_periods", _("Enter for how many periods the discount lasts."), "required")
    else:
        promo.duration_periods = None
    if promo.valid_from and promo.valid_until and promo.valid_until <= promo.valid_from:
        refuse("valid_until", _("The end must come after the start."), "invalid")
    for field in ("max_redemptions", "max_per_account"):
        if getattr(promo, field) is not None and getattr(promo, field) < 1:
            refuse(field, _("Enter at least 1, or leave it empty for no limit."), "min_value")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def promo_code_save(*, promo: PromoCode, tariffs: Iterable[Tariff]) -> PromoCode:
    """Save a new or changed promo code with the tariffs it applies to, once it keeps the rules.

    A change applies to new redemptions only: each redemption keeps the discount it was
    given (`PromoRedemption`).
    """
    if promo.pk is not None:
        # Uses are counted on this row by conditional UPDATEs: wait for them, keep their count.
        locked = PromoCode.objects.select_for_update().get(pk=promo.pk)
        promo.times_redeemed = locked.times_redeemed
    # The tariffs' currencies are read under their row locks, which `tariff_save` takes too:
    # a tariff cannot change currency between this check and the commit.
    tariffs = list(Tariff.objects.select_for_update().filter(pk__in=[t.pk for t in tariffs]).order_by("pk"))
    promo_code_clean(promo=promo, tariffs=tariffs)
    promo.save()
    promo.tariffs.set(tariffs)
    return promo
