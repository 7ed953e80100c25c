"""The pages Stripe Checkout sends the viewer back to. They show; they never activate.

Activation happens only through `checkout_sync` (a verified webhook, or the server-side
re-read the status endpoint does); the redirect itself proves nothing.
"""

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from payments.models import CheckoutSession
from payments.services.checkout import checkout_status


def _checkout_from_query(request: HttpRequest) -> CheckoutSession:
    try:
        checkout_id = uuid.UUID(request.GET.get("checkout", ""))
    except ValueError as exc:
        raise Http404("No such checkout") from exc
    checkout = checkout_status(checkout_id=checkout_id)
    if checkout is None:
        raise Http404("No such checkout")
    return checkout


def checkout_success(request: HttpRequest) -> HttpResponse:
    """Render the page that follows the payment until it settles and says what happened."""
    checkout = _checkout_from_query(request)
    return render(request, "checkout/success.html", {"checkout": checkout})


def checkout_cancel(request: HttpRequest) -> HttpResponse:
    """Render the page for a viewer who left the payment page without paying."""
    checkout = _checkout_from_query(request)
    return render(request, "checkout/cancel.html", {"checkout": checkout})
