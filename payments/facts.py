"""What the payments core records as it happens (core/facts.py): notifications and the ledger listen."""

from core.facts import Fact

# The provider took the money: every paid payment, also one refunded at once for lack of a home.
payment_captured = Fact("payment_captured", "payment")
# A viewer's payment counted for what it paid (receipts, events): not for a charge without a home.
# `subscription` is the payment's, locked by the recorder and read after what the payment did to it.
payment_succeeded = Fact("payment_succeeded", "payment", "subscription")
payment_refunded = Fact("payment_refunded", "payment", "amount")
renewal_declined = Fact("renewal_declined", "subscription", "payment")
renewal_needs_authentication = Fact("renewal_needs_authentication", "subscription", "payment")
refund_request_rejected = Fact("refund_request_rejected", "refund_request")
