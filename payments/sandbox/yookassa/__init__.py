"""The billing service's offline YooKassa sandbox (development and tests only).

The subset of YooKassa's API v3 the YooKassa gateway calls (payments create, get, list,
capture, cancel; refunds create, get, list; saved payment methods), Idempotence-Key as
YooKassa keeps it, HTTP Basic, a confirmation page taking YooKassa's test cards, unsigned
notifications with retries, and a control API for faults. It never imports Django.
See docs/sandbox.md ("The YooKassa sandbox").

    handle = start_yookassa_sandbox(webhook_url="http://127.0.0.1:8000/api/v1/webhooks/yookassa/")
    gateway = YooKassaGateway(shop_id="100500", secret_key="test_sandbox_secret_key", api_base=handle.api_base)
"""

from payments.sandbox.yookassa.app import YooKassaSandbox, YooKassaSandboxHandle, start_yookassa_sandbox

__all__ = ["YooKassaSandbox", "YooKassaSandboxHandle", "start_yookassa_sandbox"]
