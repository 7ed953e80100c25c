"""The catalogue: what a viewer can subscribe to and at what price."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.money import CURRENCY_CODE_REGEX, format_money


class PeriodUnit(models.TextChoices):
    MONTH = "month", _("month")
    YEAR = "year", _("year")


class Tariff(models.Model):
    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    amount = models.PositiveBigIntegerField(
        _("price (minor units)"), help_text=_("In minor units: 39900 is 399.00.")
    )
    currency = models.CharField(
        _("currency"), max_length=3, default="RUB", help_text=_("ISO 4217 code, e.g. RUB.")
    )
    period_unit = models.CharField(
        _("period unit"), max_length=8, choices=PeriodUnit.choices, default=PeriodUnit.MONTH
    )
    period_count = models.PositiveSmallIntegerField(_("periods per charge"), default=1)
    trial_days = models.PositiveSmallIntegerField(_("trial days"), default=0)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Only active tariffs can be subscribed to.")
    )
    display_order = models.PositiveIntegerField(_("display order"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        ordering = ["display_order", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="tariff_amount_positive"),
            models.CheckConstraint(
                condition=Q(currency__regex=CURRENCY_CODE_REGEX), name="tariff_currency_iso"
            ),
            models.CheckConstraint(
                condition=Q(period_unit__in=PeriodUnit.values), name="tariff_period_unit_valid"
            ),
            models.CheckConstraint(condition=Q(period_count__gte=1), name="tariff_period_count_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.price_display})"

    @property
    def price_display(self) -> str:
        return format_money(self.amount, self.currency)
