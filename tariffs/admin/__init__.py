"""Admin of the catalogue: managers set tariffs, their prices and promo codes here.

Importing the package registers every model's admin (Django's autodiscover imports it).
`CurrencyListFilter` is offered here too, for the billing and payments lists that filter by it.
"""

from tariffs.admin import promo_code, promo_redemption, tariff
from tariffs.admin.filters import CurrencyListFilter

__all__ = ["CurrencyListFilter", "promo_code", "promo_redemption", "tariff"]
