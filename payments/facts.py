"""What the payments core records as it happens (core/facts.py): notifications listens."""

from core.facts import Fact

payment_succeeded = Fact("payment_succeeded", "payment")
payment_refunded = Fact("payment_refunded", "payment", "amount")
renewal_declined = Fact("renewal_declined", "subscription", "payment")
renewal_needs_authentication = Fact("renewal_needs_authentication", "subscription", "payment")
refund_request_rejected = Fact("refund_request_rejected", "refund_request")
