"""What the ledger posts for the facts payments and billing record (core/facts.py).

Each listener writes in the transaction of its fact, so an entry commits or rolls back with
the payment, refund or extension it records; connected once, when the app is ready.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from billing import facts as billing_facts
from core.facts import Fact
from ledger.services import postings
from payments import facts as payments_facts

# Every fact the ledger follows, and the posting it makes of it.
LISTENERS: tuple[tuple[Fact, Callable[..., None]], ...] = (
    (payments_facts.payment_captured, postings.payment_captured),
    (payments_facts.payment_succeeded, postings.payment_succeeded),
    (payments_facts.payment_refunded, postings.payment_refunded),
    (billing_facts.subscription_extended, postings.subscription_extended),
)


def listen() -> None:
    """Connect every posting to the fact it follows."""
    for fact, listener in LISTENERS:
        fact.listen(listener)


@contextmanager
def not_listening() -> Iterator[None]:
    """Let payments and billing run as before the ledger existed (backfill tests, bench), then listen again."""
    for fact, listener in LISTENERS:
        fact.unlisten(listener)
    try:
        yield
    finally:
        listen()
