"""Admin of payments and refunds: read-only, since money moves only through the services.

Importing the package registers every model's admin (Django's autodiscover imports it).
"""

from payments.admin import payment, provider_records, refund

__all__ = ["payment", "provider_records", "refund"]
