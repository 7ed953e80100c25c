"""The hosted Checkout pages: `/checkout/{session}` and `/authenticate/{intent}`."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from payments.sandbox import checkout, pages
from payments.sandbox.checkout import PayOutcome
from payments.sandbox.errors import StripeError

if TYPE_CHECKING:
    from payments.sandbox.app import Sandbox


@dataclass
class Page:
    """An HTML answer, or a redirect when `location` is set."""

    status: int
    html: str = ""
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def handle(sandbox: "Sandbox", method: str, path: str, body: bytes) -> Page:
    """Serve one request for a hosted page."""
    parts = path.strip("/").split("/")
    form = {key: values[-1] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    ctx = sandbox.ctx()
    if len(parts) == 2 and parts[0] == "checkout":
        session_id = parts[1]
        if method == "GET":
            return _show_session(sandbox, session_id)
        if method == "POST":
            try:
                outcome = checkout.pay_session(
                    ctx,
                    session_id,
                    card_number=form.get("card_number", ""),
                    exp=form.get("exp", ""),
                    cvc=form.get("cvc", ""),
                )
            except StripeError:
                return Page(404, pages.message_page("Not found", "There is no such Checkout Session."))
            return _after(sandbox, outcome)
    if len(parts) == 2 and parts[0] == "authenticate":
        intent_id = parts[1]
        intent = ctx.store.get(intent_id)
        if intent is None or intent["object"] not in ("payment_intent", "setup_intent"):
            return Page(404, pages.message_page("Not found", "There is no such payment."))
        if method == "GET":
            if intent["status"] != "requires_action":
                return Page(
                    200,
                    pages.message_page(
                        "Nothing to authenticate", "This payment is not waiting for authentication."
                    ),
                )
            return Page(200, pages.authentication_page(intent))
        if method == "POST":
            action = form.get("action")
            if action not in ("complete", "fail"):
                return Page(400, pages.authentication_page(intent, message="Choose complete or fail."))
            authenticated = checkout.authenticate(ctx, intent_id, succeed=action == "complete")
            if authenticated is not None:
                return _after(sandbox, authenticated)
            result = checkout.authenticate_intent(ctx, intent_id, succeed=action == "complete")
            if result is None:
                return Page(
                    200,
                    pages.message_page(
                        "Nothing to authenticate", "This payment is not waiting for authentication."
                    ),
                )
            title = "Authentication complete" if result["status"] == "succeeded" else "Authentication failed"
            return Page(200, pages.message_page(title, "You can close this page."))
    return Page(404, pages.message_page("Not found", "There is no such page in the Stripe sandbox."))


def _show_session(sandbox: "Sandbox", session_id: str) -> Page:
    ctx = sandbox.ctx()
    try:
        session = checkout.get_session(ctx, session_id)
    except StripeError:
        return Page(404, pages.message_page("Not found", "There is no such Checkout Session."))
    if session["status"] == "open":
        return Page(200, pages.checkout_page(ctx, session))
    return _closed(session, checkout.unavailable_message(session))


def _closed(session: checkout.Obj, message: str) -> Page:
    if session["status"] == "complete":
        return Page(200, pages.message_page("Payment complete", message, link=session["success_url"]))
    return Page(
        200,
        pages.message_page(
            "Session expired", message, link=session["cancel_url"], link_text="Back to the shop"
        ),
    )


def _after(sandbox: "Sandbox", outcome: PayOutcome) -> Page:
    session = outcome.session
    if outcome.status == "succeeded":
        if outcome.redirect_url:
            return Page(303, location=outcome.redirect_url)
        return Page(200, pages.message_page("Payment complete", "Thank you. You can close this page."))
    if outcome.status == "requires_action" and outcome.intent is not None:
        # Relative, so it works whichever address the viewer reached the sandbox by.
        return Page(303, location=f"/authenticate/{outcome.intent['id']}")
    if outcome.status in ("declined", "invalid") and session["status"] == "open":
        return Page(200, pages.checkout_page(sandbox.ctx(), session, message=outcome.message))
    return _closed(session, outcome.message or checkout.unavailable_message(session))
