"""The page behind a payment's durable action link (`/pay/<token>/`): a thin adapter.

What the link leads to is decided by `payments.services.action_links.action_link_follow`;
this only turns the outcome into a redirect to the provider's page or a short page of ours,
in the viewer's language (the locale middleware).
"""

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from core.money import format_money
from payments.gateways.errors import GatewayError
from payments.models import Payment
from payments.services.action_links import (
    ActionLinkState,
    action_link_follow,
    action_link_payment_id,
)

logger = logging.getLogger(__name__)

_PAGES = {
    ActionLinkState.ALREADY_PAID: ("checkout/action_paid.html", 200),
    ActionLinkState.CLOSED: ("checkout/action_closed.html", 200),
    ActionLinkState.UNKNOWN: ("checkout/action_invalid.html", 404),
}


def _page(request: HttpRequest, template: str, status: int, payment: Payment | None = None) -> HttpResponse:
    language = get_language()
    context = {"LANGUAGE_CODE": language, "payment": payment}
    if payment is not None:
        context["amount"] = format_money(payment.amount, payment.currency, language=language)
    return render(request, template, context, status=status)


# Never cached: each follow decides afresh, and the answer names a page that may be gone tomorrow.
@never_cache
@require_safe
def payment_action_link(request: HttpRequest, token: str) -> HttpResponse:
    """Send the viewer to a page where they can pay, or tell them why there is nothing to pay."""
    payment_id = action_link_payment_id(token=token)
    if payment_id is None:
        return _page(request, "checkout/action_invalid.html", 404)
    try:
        outcome = action_link_follow(payment_id=payment_id)
    except GatewayError:
        logger.warning("could not open a payment page for payment %s", payment_id, exc_info=True)
        response = _page(request, "checkout/action_unavailable.html", 503)
        response["Retry-After"] = "60"
        return response
    if outcome.state == ActionLinkState.OPEN:
        return HttpResponseRedirect(outcome.checkout_url)
    template, status = _PAGES[outcome.state]
    return _page(request, template, status, outcome.payment)
