"""URL map of the billing service."""

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import include, path, re_path, reverse_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.pages import storefront
from config.health import healthz, readyz
from config.metrics import METRICS_URL_NAME, metrics_view
from core.errors import json_not_found
from payments.dashboard.views import accounting_dashboard
from payments.pages import checkout_cancel, checkout_review, checkout_success
from payments.pages_action import payment_action_link

admin.site.site_header = _("Cinema billing")
admin.site.site_title = _("Cinema billing")
admin.site.index_title = _("Back office")
# The admin's "View site" link opens the demo storefront, or is hidden when there is none.
# (Lazy: the URLs are not loaded yet. Django's admin renders any string-like value.)
admin.site.site_url = reverse_lazy("storefront") if settings.STOREFRONT_ENABLED else None  # type: ignore[assignment]


def home(request: HttpRequest) -> HttpResponse:
    """Send a visitor of `/` to the demo storefront, when it is enabled."""
    if not settings.STOREFRONT_ENABLED:
        raise Http404("The demo storefront is not enabled")
    return redirect("storefront")


api_v1 = [
    path("", include("tariffs.urls")),
    path("", include("billing.urls")),
    path("", include("payments.urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Any other path under /api/ answers in the API's error shape, DEBUG or not, whatever the
    # method: exempt from CSRF, which would otherwise refuse a POST with an HTML page first.
    re_path(r"^api/", csrf_exempt(json_not_found)),
    path("admin/dashboard/", accounting_dashboard, name="admin-dashboard"),
    path("admin/", admin.site.urls),
    # Django's set_language view: the admin's language switch posts to it.
    path("i18n/", include("django.conf.urls.i18n")),
    path("storefront/", storefront, name="storefront"),
    path("checkout/review/", checkout_review, name="checkout-review"),
    path("checkout/success/", checkout_success, name="checkout-success"),
    path("checkout/cancel/", checkout_cancel, name="checkout-cancel"),
    # The durable link of "confirm your payment" emails (payments/services/action_links.py).
    path("pay/<str:token>/", payment_action_link, name="payment-action-link"),
    path("healthz/", healthz, name="healthz"),
    path("readyz/", readyz, name="readyz"),
    # Prometheus's default path, without a slash (config/metrics.py, docs/operations.md).
    path("metrics", metrics_view, name=METRICS_URL_NAME),
]

handler400 = "core.errors.json_bad_request"
handler403 = "core.errors.json_permission_denied"
handler404 = "core.errors.json_not_found"
handler500 = "core.errors.json_server_error"
