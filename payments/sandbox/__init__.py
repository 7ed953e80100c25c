"""The billing service's offline Stripe-compatible sandbox (development and tests only).

It serves the subset of Stripe's API the Stripe gateway calls, a hosted Checkout
page that takes Stripe's test cards, signed webhooks with retries, and a control
API for fault injection and inspection. It never imports Django. See
docs/sandbox.md.

    handle = start_sandbox(webhook_url="http://127.0.0.1:8000/webhooks/stripe/")
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": handle.base_url})
    ...
    handle.stop()
"""

from payments.sandbox.app import Sandbox, SandboxHandle, SandboxRefused, ensure_not_production, start_sandbox

__all__ = ["Sandbox", "SandboxHandle", "SandboxRefused", "ensure_not_production", "start_sandbox"]
