"""Who pays: our side of a cinema user."""

from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from core.fields import CreatedAtField, UpdatedAtField


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
    # Its customer and saved card at each payment provider: payments.ProviderCustomer.
    created_at = CreatedAtField(_("created"))
    updated_at = UpdatedAtField(_("updated"))

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
