"""An in-memory payment gateway for unit tests of domain rules (promo codes, periods, refunds).

It keeps customers, checkout sessions, intents, cards, charges, refunds, ledger entries and
events in plain dicts of this process: no thread, no socket, no randomness (ids count up),
so a test that uses it is fast and runs the same every time. Where it has to decide, it
decides as the offline sandbox (`payments.sandbox`) does: the same test cards
(`payments.sandbox.cards`), the same idempotency (a key replays its first success or
decline; a key reused with other parameters is refused), the same refund and expiry rules.

The gateway contract itself (the SDK, errors on the wire, webhooks, retries) is proved against
the HTTP sandbox and localstripe; this fake is for what the domain decides with the answers.
Selected with `PAYMENT_GATEWAY = "memory"`; never in production (see `get_gateway()`).
"""

from payments.gateways.memory.gateway import MemoryGateway
from payments.gateways.memory.records import MemoryState, PayResult

__all__ = ["MemoryGateway", "MemoryState", "PayResult"]
