"""Reads of the catalogue."""

from django.db.models import QuerySet

from tariffs.models import Tariff


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
