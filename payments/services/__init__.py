"""Writes to payments, checkouts and Stripe events, split by flow: `checkout`, `webhooks`."""
