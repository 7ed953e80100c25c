"""Admin of promo code redemptions: who used which code on which subscription."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin_base import ReadOnlyAdminMixin
from tariffs.admin.display import promo_duration_display
from tariffs.models import PromoRedemption


@admin.register(PromoRedemption)
class PromoRedemptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: redemptions are written by subscribes (tariffs.services), never by hand."""

    list_display = ("created_at", "promo", "account", "subscription_link", "discount", "lasts", "released_at")
    list_filter = ("promo",)
    list_select_related = ("promo", "account", "subscription")
    search_fields = ("promo__code", "account__user_id", "account__email")
    search_help_text = _("Code, cinema user id or email.")
    # The table may grow large: no second COUNT(*) of all of it on every page.
    show_full_result_count = False
    fields = (
        "promo",
        "account",
        "subscription_link",
        "discount",
        "lasts",
        "created_at",
        "released_at",
    )
    readonly_fields = fields

    @admin.display(description=_("subscription"))
    def subscription_link(self, redemption: PromoRedemption) -> str:
        url = reverse("admin:billing_subscription_change", args=[redemption.subscription_id])
        return format_html('<a href="{}">{}</a>', url, redemption.subscription_id)

    @admin.display(description=_("discount"))
    def discount(self, redemption: PromoRedemption) -> str:
        return redemption.discount_display

    @admin.display(description=_("lasts"))
    def lasts(self, redemption: PromoRedemption) -> str:
        return promo_duration_display(redemption.periods)
