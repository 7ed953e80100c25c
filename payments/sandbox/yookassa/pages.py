"""The confirmation page (`/payments/confirm?orderId=`) and its 3-D Secure step, plain HTML."""

from __future__ import annotations

from html import escape
from typing import Any


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><main>{body}</main></body></html>"
    )


def confirm_form(payment: dict[str, Any], error: str | None = None) -> str:
    """Return the card form of a pending payment."""
    order = escape(payment["id"])
    amount = escape(f"{payment['amount']['value']} {payment['amount']['currency']}")
    message = f'<p role="alert" class="error">{escape(error)}</p>' if error else ""
    return _page(
        "YooKassa sandbox: payment",
        f'<h1>YooKassa sandbox</h1><p>{escape(payment.get("description", ""))}</p><p class="amount">{amount}</p>'
        f'{message}<form method="post" action="/payments/confirm?orderId={order}">'
        '<label>Card number <input name="card_number" autocomplete="cc-number" required></label>'
        '<label>Expiry (MM / YY) <input name="exp" autocomplete="cc-exp" required></label>'
        '<label>CVC <input name="cvc" autocomplete="cc-csc" required></label>'
        '<button type="submit">Pay</button></form>',
    )


def three_d_secure(payment_id: str) -> str:
    """Return the 3-D Secure step with its two buttons."""
    order = escape(payment_id)
    return _page(
        "YooKassa sandbox: 3-D Secure",
        "<h1>3-D Secure</h1><p>The bank asks you to confirm the payment.</p>"
        f'<form method="post" action="/payments/3ds?orderId={order}">'
        '<button type="submit" name="action" value="complete">Complete authentication</button>'
        '<button type="submit" name="action" value="fail">Fail authentication</button></form>',
    )


def message(text: str) -> str:
    """Return a page that only says something."""
    return _page("YooKassa sandbox", f"<h1>YooKassa sandbox</h1><p>{escape(text)}</p>")
