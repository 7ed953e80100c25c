"""Reads of the catalogue."""

from django.db.models import QuerySet

from tariffs.models import Tariff


def tariff_list_active() -> QuerySet[Tariff]:
    """Return the tariffs a viewer can subscribe to, in display order."""
    return Tariff.objects.filter(is_active=True).order_by("display_order", "id")
