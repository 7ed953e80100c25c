"""Writes to payments, checkouts and provider events, split by flow: `checkout`, `webhooks`."""
