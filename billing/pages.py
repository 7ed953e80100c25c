"""The demo storefront: a stand-in for the cinema's frontend, using only the public API."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.tokens import TokenError, issue_token

DEMO_VIEWER_ID = "demo-viewer"
DEMO_VIEWER_EMAIL = "viewer@example.com"
DEMO_TOKEN_TTL_SECONDS = 24 * 3600


def storefront(request: HttpRequest) -> HttpResponse:
    """Render the demo storefront, signed in as the demo viewer when tokens can be issued here."""
    if not settings.STOREFRONT_ENABLED:
        raise Http404("The demo storefront is not enabled")
    try:
        token = issue_token(
            user_id=DEMO_VIEWER_ID, email=DEMO_VIEWER_EMAIL, ttl_seconds=DEMO_TOKEN_TTL_SECONDS
        )
    except TokenError:
        token = ""  # RS256 deployments: paste a token from the auth service instead.
    return render(request, "storefront/index.html", {"demo_token": token, "demo_viewer": DEMO_VIEWER_ID})
