"""The catalogue: what a viewer can subscribe to, at what price, and the promo codes that discount it."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from core.fields import CreatedAtField, UpdatedAtField
from core.money import CURRENCY_CODE_REGEX, format_money


class PeriodUnit(models.TextChoices):
    MONTH = "month", _("month")
    YEAR = "year", _("year")


def default_payment_provider() -> str:
    """Return the provider a tariff without its own takes its payments through (`DEFAULT_PAYMENT_PROVIDER`)."""
    return str(getattr(settings, "DEFAULT_PAYMENT_PROVIDER", "") or "stripe")


# The currency each provider that takes only one is restricted to: YooKassa pays out roubles only.
PROVIDER_CURRENCIES = {"yookassa": "RUB"}
# How managers know the providers (the names are the `provider` values of every row).
PROVIDER_NAMES = {"stripe": "Stripe", "yookassa": "YooKassa"}


class Tariff(models.Model):
    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    # The name and description in English, shown in any language without its own text.
    name = models.CharField(_("name"), max_length=120)
    name_ru = models.CharField(
        _("name in Russian"), max_length=120, blank=True, help_text=_("Empty: the English name is shown.")
    )
    description = models.TextField(_("description"), blank=True)
    description_ru = models.TextField(
        _("description in Russian"), blank=True, help_text=_("Empty: the English description is shown.")
    )
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
    # Which payment provider takes this tariff's payments; empty: the deployment's default
    # (`payment_provider`), as every tariff did before providers were chosen per tariff. The
    # catalogue cannot know the configured providers (payments sits above it): the admin form
    # checks the name against them, and `tariffs.services.tariff_clean` the provider's currency.
    provider = models.CharField(
        _("payment provider"),
        max_length=16,
        blank=True,
        help_text=_(
            "Who takes the payments of new subscriptions; empty: the default provider. "
            "YooKassa takes roubles (RUB) only."
        ),
    )
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

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
            # PROVIDER_CURRENCIES, held by the database too.
            models.CheckConstraint(
                condition=~Q(provider="yookassa") | Q(currency="RUB"), name="tariff_yookassa_in_rub"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.price_display})"

    @property
    def price_display(self) -> str:
        return format_money(self.amount, self.currency)

    @property
    def payment_provider(self) -> str:
        """Return the provider that takes this tariff's payments: its own, else the default one."""
        return self.provider or default_payment_provider()

    def name_for(self, language: str | None = None) -> str:
        """Return the name in `language` (the active one by default), else the English name."""
        return self._in_language(self.name, self.name_ru, language)

    def description_for(self, language: str | None = None) -> str:
        """Return the description in `language` (the active one by default), else the English one."""
        return self._in_language(self.description, self.description_ru, language)

    @staticmethod
    def _in_language(english: str, russian: str, language: str | None) -> str:
        # "ru", "ru-RU", "ru_RU": what accounts, tokens and Accept-Language carry.
        code = (language if language is not None else translation.get_language() or "").lower()
        return russian if code[:2] == "ru" and russian else english


class PromoKind(models.TextChoices):
    PERCENT = "percent", _("percent off")
    FIXED = "fixed", _("fixed amount off")


class PromoDuration(models.TextChoices):
    ONCE = "once", _("first period only")
    REPEATING = "repeating", _("a number of periods")
    FOREVER = "forever", _("every period")


# Codes are stored in upper case and matched whatever case the viewer types.
PROMO_CODE_REGEX = r"^[A-Z0-9][A-Z0-9_-]{2,63}$"


class PromoCode(models.Model):
    """A code a viewer types at subscribe for a discount, within limits managers set.

    Its uses are counted in `times_redeemed` by `billing.promotions.promo_code_redeem` with a
    conditional UPDATE, so the limit holds however many viewers subscribe at once.
    """

    code = models.CharField(
        _("code"),
        max_length=64,
        unique=True,
        help_text=_(
            "3 to 64 letters, digits, '-' or '_'. Stored in upper case; viewers may type it in any case."
        ),
    )
    description = models.TextField(_("internal note"), blank=True, help_text=_("Never shown to viewers."))
    kind = models.CharField(_("discount kind"), max_length=8, choices=PromoKind.choices)
    percent_off = models.PositiveSmallIntegerField(_("percent off"), null=True, blank=True)
    amount_off = models.PositiveBigIntegerField(
        _("amount off (minor units)"), null=True, blank=True, help_text=_("In minor units: 10000 is 100.00.")
    )
    # Only for a fixed amount: such a code applies to tariffs in this currency only.
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    duration = models.CharField(_("duration"), max_length=16, choices=PromoDuration.choices)
    duration_periods = models.PositiveSmallIntegerField(
        _("number of periods"),
        null=True,
        blank=True,
        help_text=_("Only for a discount on a number of periods."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(
        _("uses in total"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    # Uses that count toward `max_redemptions`; written only by tariffs.services.
    times_redeemed = models.PositiveIntegerField(_("times used"), default=0, editable=False)
    max_per_account = models.PositiveIntegerField(
        _("uses per viewer"), null=True, blank=True, default=1, help_text=_("Empty: no limit.")
    )
    tariffs = models.ManyToManyField(
        Tariff,
        blank=True,
        related_name="promo_codes",
        verbose_name=_("tariffs"),
        help_text=_("The tariffs the code applies to; none selected: every tariff."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

    class Meta:
        verbose_name = _("promo code")
        verbose_name_plural = _("promo codes")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=PROMO_CODE_REGEX), name="promo_code_format"),
            models.CheckConstraint(condition=Q(kind__in=PromoKind.values), name="promo_kind_valid"),
            models.CheckConstraint(
                # Every comparison is paired with IS NOT NULL: a NULL would let the check pass.
                condition=Q(
                    kind=PromoKind.PERCENT,
                    percent_off__isnull=False,
                    percent_off__gte=1,
                    percent_off__lte=100,
                    amount_off__isnull=True,
                    currency="",
                )
                | Q(
                    kind=PromoKind.FIXED,
                    amount_off__isnull=False,
                    amount_off__gt=0,
                    percent_off__isnull=True,
                    currency__regex=CURRENCY_CODE_REGEX,
                ),
                name="promo_discount_shape",
            ),
            models.CheckConstraint(
                condition=Q(
                    duration=PromoDuration.REPEATING, duration_periods__isnull=False, duration_periods__gte=1
                )
                | Q(
                    duration__in=[PromoDuration.ONCE, PromoDuration.FOREVER],
                    duration_periods__isnull=True,
                ),
                name="promo_duration_shape",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gt=F("valid_from")),
                name="promo_validity_window",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(max_redemptions__gte=1),
                name="promo_max_redemptions_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_per_account__isnull=True) | Q(max_per_account__gte=1),
                name="promo_max_per_account_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def discount_display(self) -> str:
        return discount_display(self.kind, self.percent_off or self.amount_off or 0, self.currency)

    @property
    def periods(self) -> int | None:
        """Return how many periods the discount lasts (None: every period)."""
        if self.duration == PromoDuration.ONCE:
            return 1
        if self.duration == PromoDuration.REPEATING:
            return self.duration_periods
        return None


def discount_display(kind: str, value: int, currency: str) -> str:
    """Return a discount as people read it: "15%" or "100.00 RUB"."""
    if kind == PromoKind.PERCENT:
        return f"{value}%"
    return format_money(value, currency)


class PromoRedemption(models.Model):
    """One use of a promo code: the subscription it discounts and what it was promised.

    The discount is copied from the code at subscribe, so a later edit of the code never
    changes what a viewer was promised.
    """

    promo = models.ForeignKey(
        PromoCode, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("promo code")
    )
    account = models.ForeignKey(
        "accounts.BillingAccount",
        on_delete=models.PROTECT,
        related_name="promo_redemptions",
        verbose_name=_("account"),
    )
    subscription = models.OneToOneField(
        "billing.Subscription",
        on_delete=models.PROTECT,
        related_name="promo_redemption",
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("discount kind"), max_length=8, choices=PromoKind.choices)
    # A percent (1..100) or an amount in minor units of `currency`.
    value = models.PositiveBigIntegerField(_("discount"))
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    periods = models.PositiveSmallIntegerField(
        _("discounted periods"), null=True, blank=True, help_text=_("Empty: every period.")
    )
    # When this use stopped counting toward the code's limits: its subscription ended
    # without ever starting, or a new subscribe with the same code took it over.
    released_at = models.DateTimeField(_("given back at"), null=True, blank=True)
    created_at = CreatedAtField(_("redeemed at"))

    class Meta:
        verbose_name = _("promo code redemption")
        verbose_name_plural = _("promo code redemptions")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=PromoKind.values), name="promo_redemption_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind=PromoKind.PERCENT, value__gte=1, value__lte=100, currency="")
                | Q(kind=PromoKind.FIXED, value__gt=0, currency__regex=CURRENCY_CODE_REGEX),
                name="promo_redemption_discount_shape",
            ),
            models.CheckConstraint(
                condition=Q(periods__isnull=True) | Q(periods__gte=1),
                name="promo_redemption_periods_positive",
            ),
        ]
        indexes = [
            # The uses that still count: per-account limits and giving uses back read these.
            models.Index(
                fields=["promo", "account"],
                condition=Q(released_at__isnull=True),
                name="promo_redemption_counted_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.promo} · {self.discount_display}"

    @property
    def discount_display(self) -> str:
        return discount_display(self.kind, self.value, self.currency)
