"""The hosted pages a viewer sees: the card form, the 3D Secure step, and closed sessions.

Plain HTML without scripts, so a test can read it with urllib and a browser test
can fill it in. Field names and button labels are part of the sandbox's contract
(docs/sandbox.md): inputs `card_number`, `exp`, `cvc`; buttons "Pay",
"Complete authentication" and "Fail authentication".
"""

from html import escape

from payments.sandbox import objects
from payments.sandbox.context import Ctx

Obj = objects.Obj

_STYLE = """
body { font-family: system-ui, sans-serif; background: #f6f7fb; color: #1a1f36; margin: 0; }
main { max-width: 26rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 8px;
       box-shadow: 0 2px 8px rgba(0,0,0,.08); }
.badge { display: inline-block; background: #ffde92; color: #5d3a00; font-size: .75rem; padding: .1rem .5rem;
         border-radius: 4px; text-transform: uppercase; letter-spacing: .05em; }
.total { font-size: 1.75rem; font-weight: 600; margin: .25rem 0 1.25rem; }
label { display: block; font-size: .85rem; margin-top: .75rem; }
input { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem; border: 1px solid #ccd;
        border-radius: 4px; }
.row { display: flex; gap: .75rem; }
button { margin-top: 1.25rem; width: 100%; padding: .75rem; font-size: 1rem; border: 0; border-radius: 4px;
         background: #635bff; color: #fff; cursor: pointer; }
button.secondary { background: #e3e8ee; color: #1a1f36; }
.error { background: #fde8e8; color: #a4161a; padding: .6rem; border-radius: 4px; }
.cards { font-size: .8rem; color: #555; margin-top: 1.5rem; }
a { color: #635bff; }
"""

_CARD_HINTS = [
    ("4242 4242 4242 4242", "succeeds"),
    ("4000 0000 0000 0002", "declined"),
    ("4000 0000 0000 9995", "insufficient funds"),
    ("4000 0027 6000 3184", "asks for authentication"),
    ("4000 0000 0000 0341", "saved, then off-session charges fail"),
]


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Stripe sandbox</title><style>{_STYLE}</style></head>"
        f'<body><main><span class="badge">Sandbox · test mode</span>{body}</main></body></html>\n'
    )


def checkout_page(ctx: Ctx, session: Obj, *, message: str | None = None) -> str:
    """Return the card form of an open session, with `message` when the last try failed."""
    items = ctx.store.internal(session["id"]).get("line_items", [])
    if session["mode"] == "payment":
        names = ", ".join(escape(item["description"]) for item in items)
        heading = f"<h1>{names}</h1>"
        total = f'<p class="total">{escape(objects.format_amount(session["amount_total"], session["currency"]))}</p>'
        lines = "".join(
            f"<li>{escape(item['description'])} x {item['quantity']}: "
            f"{escape(objects.format_amount(item['amount_total'], item['currency']))}</li>"
            for item in items
        )
        summary = f"<ul>{lines}</ul>" if len(items) > 1 else ""
    else:
        heading = "<h1>Save a card for future payments</h1>"
        total = '<p class="total">Nothing to pay today</p>'
        summary = ""
    email = session["customer_email"]
    if session["customer"]:
        customer = ctx.store.get(session["customer"], "customer")
        email = customer["email"] if customer else email
    who = f"<p>Paying as {escape(email)}</p>" if email else ""
    error = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    cancel = (
        f'<p><a href="{escape(session["cancel_url"], quote=True)}">Cancel</a></p>'
        if session["cancel_url"]
        else ""
    )
    hints = "".join(f"<li><code>{number}</code> {escape(what)}</li>" for number, what in _CARD_HINTS)
    body = (
        f"{heading}{total}{summary}{who}{error}"
        f'<form method="post" action="/checkout/{escape(session["id"], quote=True)}" autocomplete="off">'
        '<label for="card_number">Card number</label>'
        '<input id="card_number" name="card_number" inputmode="numeric" placeholder="4242 4242 4242 4242" required>'
        '<div class="row"><div><label for="exp">Expiry (MM / YY)</label>'
        '<input id="exp" name="exp" placeholder="12 / 34" required></div>'
        '<div><label for="cvc">CVC</label>'
        '<input id="cvc" name="cvc" inputmode="numeric" placeholder="123" required></div></div>'
        '<button type="submit">Pay</button></form>'
        f'{cancel}<div class="cards">Test cards (any future expiry, any CVC):<ul>{hints}</ul></div>'
    )
    return _page("Checkout", body)


def authentication_page(intent: Obj, *, message: str | None = None) -> str:
    """Return the 3D Secure step with its two buttons."""
    amount = (
        f'<p class="total">{escape(objects.format_amount(intent["amount"], intent["currency"]))}</p>'
        if intent["object"] == "payment_intent"
        else ""
    )
    error = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    body = (
        "<h1>Authenticate this payment</h1>"
        f"{amount}{error}<p>Your bank asks you to confirm it is you (3D Secure test page).</p>"
        f'<form method="post" action="/authenticate/{escape(intent["id"], quote=True)}">'
        '<button type="submit" name="action" value="complete">Complete authentication</button>'
        '<button type="submit" name="action" value="fail" class="secondary">Fail authentication</button>'
        "</form>"
    )
    return _page("Authentication", body)


def message_page(title: str, text: str, *, link: str | None = None, link_text: str = "Continue") -> str:
    """Return a page that only says something (closed session, done, nothing to authenticate)."""
    anchor = f'<p><a href="{escape(link, quote=True)}">{escape(link_text)}</a></p>' if link else ""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>{anchor}")
