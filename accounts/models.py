"""Who pays: our side of a cinema user."""

from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    RUSSIAN = "ru", "Русский"


class BillingAccount(models.Model):
    """The billing side of one cinema user, created on that user's first request."""

    user_id = models.CharField(
        _("cinema user id"), max_length=128, unique=True, help_text=_("The JWT's `sub`.")
    )
    email = models.EmailField(_("email"), blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.ENGLISH
    )
    stripe_customer_id = models.CharField(
        _("Stripe customer id"), max_length=255, null=True, blank=True, unique=True
    )
    # The card renewals charge off-session: Stripe's id and what Stripe lets us show of it.
    default_payment_method_id = models.CharField(
        _("saved payment method (Stripe id)"), max_length=255, blank=True
    )
    card_brand = models.CharField(_("card brand"), max_length=32, blank=True)
    card_last4 = models.CharField(_("card last 4"), max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(_("card expiry month"), null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(_("card expiry year"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("billing account")
        verbose_name_plural = _("billing accounts")
        indexes = [
            models.Index(fields=["email"], name="account_email_idx"),
            # Support searches accounts by email whatever its case.
            models.Index(Upper("email"), name="account_email_upper_idx"),
        ]

    def __str__(self) -> str:
        return self.email or self.user_id
