"""What notifications does with the facts billing and payments record (core/facts.py).

Each listener tells viewers (emails) and the cinema's services (signed events) in the
transaction of the fact; connected once, when the app is ready (notifications/apps.py).
"""

from billing import facts as billing_facts
from notifications import notify
from payments import facts as payments_facts


def listen() -> None:
    """Connect every notification to the fact it follows."""
    billing_facts.subscription_status_changed.listen(notify.subscription_status_changed)
    billing_facts.subscription_renewed.listen(notify.subscription_renewed)
    billing_facts.subscription_canceled.listen(notify.subscription_canceled)
    billing_facts.subscription_extended.listen(notify.subscription_extended)
    billing_facts.subscription_changed.listen(notify.subscription_changed)
    payments_facts.payment_succeeded.listen(notify.payment_succeeded)
    payments_facts.payment_refunded.listen(notify.payment_refunded)
    payments_facts.refund_request_rejected.listen(notify.refund_request_rejected)
    payments_facts.renewal_declined.listen(notify.renewal_declined)
    payments_facts.renewal_needs_authentication.listen(notify.renewal_needs_authentication)
