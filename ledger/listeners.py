"""What the ledger posts for the facts payments and billing record (core/facts.py).

Each listener writes in the transaction of its fact, so an entry commits or rolls back with
the payment, refund or extension it records; connected once, when the app is ready.
"""

from billing import facts as billing_facts
from ledger.services import postings
from payments import facts as payments_facts


def listen() -> None:
    """Connect every posting to the fact it follows."""
    payments_facts.payment_captured.listen(postings.payment_captured)
    payments_facts.payment_succeeded.listen(postings.payment_succeeded)
    payments_facts.payment_refunded.listen(postings.payment_refunded)
    billing_facts.subscription_extended.listen(postings.subscription_extended)
