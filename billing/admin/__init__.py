"""Admin of subscriptions: read-only, since every status change goes through billing.services.

Support's writes are the goodwill extension (*Extend (goodwill)* on a subscription's page: a
form, a confirmation, then `billing.services.subscription_extend`; `extension.py`) and *Cancel
subscription* (a form, a confirmation, then
`payments.services.cancellation.subscription_cancel_by_staff`; `cancellation.py`).

Importing the package registers every model's admin (Django's autodiscover imports it), the
audit log's (`billing/admin_audit.py`) included.
"""

from billing import admin_audit
from billing.admin import subscription

__all__ = ["admin_audit", "subscription"]
