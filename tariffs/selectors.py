"""Reads of the catalogue and its promo codes."""

from uuid import UUID

from django.db.models import QuerySet

from tariffs.models import PROVIDER_CURRENCIES, PromoCode, PromoRedemption, Tariff


def tariff_list_active() -> QuerySet[Tariff]:
    """Return the tariffs a viewer can subscribe to, in display order."""
    return Tariff.objects.filter(is_active=True).order_by("display_order", "id")


def tariff_get_by_reference(*, reference: str) -> Tariff | None:
    """Return the active tariff with this id or slug, or None."""
    active = tariff_list_active()
    # Only plain ASCII digits that fit a database integer are ids; anything else is a slug.
    if reference.isascii() and reference.isdigit() and len(reference) <= 18:
        return active.filter(pk=int(reference)).first()
    return active.filter(slug=reference).first()


def promo_code_normalize(code: str) -> str:
    """Return a code as stored: without surrounding spaces, in upper case."""
    return code.strip().upper()


def promo_code_get(*, code: str) -> PromoCode | None:
    """Return the promo code a viewer typed, whatever its case, or None."""
    return PromoCode.objects.filter(code=promo_code_normalize(code)).prefetch_related("tariffs").first()


def promo_redemption_for_subscription(*, subscription_id: UUID) -> PromoRedemption | None:
    """Return the promo code redemption that discounts a subscription, if any."""
    return PromoRedemption.objects.filter(subscription_id=subscription_id).first()


def tariff_currency_fits(*, tariff: Tariff) -> bool:
    """Return whether the tariff's provider takes its currency (YooKassa: RUB only, `PROVIDER_CURRENCIES`).

    A tariff saved through the catalogue's rules always fits; one whose provider is the default
    may stop fitting when the deployment changes its default.
    """
    required = PROVIDER_CURRENCIES.get(tariff.payment_provider)
    return required is None or tariff.currency == required
