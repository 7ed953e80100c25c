"""The catalogue's admin forms: prices as people type them, checked by the catalogue's rules."""

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance
from django.utils.translation import gettext_lazy as _

from payments.gateways import configured_providers, default_provider
from tariffs.models import PROVIDER_NAMES, PromoCode, PromoKind, Tariff
from tariffs.money_entry import money_entry_format, money_entry_parse
from tariffs.selectors import promo_code_normalize
from tariffs.services import promo_code_clean, tariff_clean

MONEY_INPUT_ATTRS = {"inputmode": "decimal", "autocomplete": "off", "size": "16"}


class CatalogueRulesForm(forms.ModelForm):
    """Check the form's instance by the catalogue's rules (a `*_clean` service), field by field.

    The rules run before the ModelForm's own model validation, so that a rule the database
    also holds is reported on its field, in the service's words, rather than as a broken
    constraint. What the service normalises goes back into `cleaned_data`, which the
    ModelForm copies to the instance again.
    """

    # Model fields the form takes under another name: {model field: form field}.
    renamed: ClassVar[dict[str, str]] = {}

    def rules_clean(self, instance: Any) -> None:
        """Check the instance by the catalogue's rules; raise ValidationError by field."""
        raise NotImplementedError

    def clean_currency(self) -> str:
        # Upper case before the model's own checks see it; the rules are the `*_clean` service's.
        return str(self.cleaned_data["currency"]).strip().upper()

    def _post_clean(self) -> None:
        self._clean_by_rules()
        super()._post_clean()  # type: ignore[misc]  # ModelForm's own hook, missing from the stubs

    def _clean_by_rules(self) -> None:
        if self.errors:
            return  # a field the rules read is missing: its own error says why
        instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        try:
            self.rules_clean(instance)
        except ValidationError as error:
            for field, field_errors in error.error_dict.items():
                name = self.renamed.get(field, field)
                self.add_error(name if name in self.fields else None, field_errors)
        concrete = {field.name for field in instance._meta.concrete_fields}
        for name in list(self.cleaned_data):
            if name in concrete:
                self.cleaned_data[name] = getattr(instance, name)


class TariffAdminForm(CatalogueRulesForm):
    """Take the price as people type it ("999,00", "1 999.00") and check it by the catalogue's rules."""

    renamed = {"amount": "price"}

    price = forms.CharField(
        label=_("price"),
        widget=forms.TextInput(attrs=MONEY_INPUT_ATTRS),
        help_text=_(
            "In the currency's units, e.g. 999,00 or 999.00; a space may separate thousands "
            "(1 999,00). You confirm the price before it is saved. A new price applies to new "
            "subscriptions only: current subscribers keep the price they signed up at."
        ),
    )

    class Meta:
        model = Tariff
        fields = (
            "name",
            "name_ru",
            "slug",
            "description",
            "description_ru",
            "price",
            "currency",
            "period_count",
            "period_unit",
            "trial_days",
            "provider",
            "is_active",
            "display_order",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.setdefault("price", money_entry_format(self.instance.amount, self.instance.currency))
        if "provider" in self.fields:
            # Only the providers this deployment takes payments through (and the tariff's own,
            # so that an existing tariff still shows where its payments went); empty: the default.
            names = sorted(configured_providers())
            if self.instance.provider and self.instance.provider not in names:
                names.append(self.instance.provider)
            field = self.fields["provider"]
            default = PROVIDER_NAMES.get(default_provider(), default_provider())
            self.fields["provider"] = forms.ChoiceField(
                label=field.label,
                help_text=field.help_text,
                choices=[("", _("The default provider (%(name)s)") % {"name": default})]
                + [(name, PROVIDER_NAMES.get(name, name)) for name in names],
                required=False,
            )

    def clean_provider(self) -> str:
        if self.add_prefix("provider") not in self.data:
            # Not in the submission at all (the admin's own page always sends it): keep it.
            return str(self.instance.provider)
        name = str(self.cleaned_data.get("provider") or "")
        if name and name not in configured_providers() and name != self.instance.provider:
            raise ValidationError(
                _("This deployment takes no payments through %(provider)s."),
                code="provider_unknown",
                params={"provider": name},
            )
        return name

    def rules_clean(self, instance: Any) -> None:
        tariff_clean(tariff=instance)

    def clean(self) -> dict[str, Any]:
        super().clean()
        price, currency = self.cleaned_data.get("price"), self.cleaned_data.get("currency")
        if price is not None and currency:
            try:
                # The amount is no form field, so the ModelForm never copies it to the
                # instance: it is set here, where price and currency are both known.
                self.instance.amount = money_entry_parse(price, currency.strip())
            except ValidationError as error:
                self.add_error("price", error)
        return self.cleaned_data


class PromoCodeAdminForm(CatalogueRulesForm):
    """Take a fixed discount as people type it ("100,00") and check the code by the catalogue's rules."""

    renamed = {"amount_off": "amount"}

    amount = forms.CharField(
        label=_("amount off"),
        required=False,
        widget=forms.TextInput(attrs=MONEY_INPUT_ATTRS),
        help_text=_(
            "For a fixed amount off: in the currency's units, e.g. 100,00 or 100.00. It must be "
            "the currency of the tariffs the code applies to."
        ),
    )

    class Meta:
        model = PromoCode
        fields = (
            "code",
            "description",
            "is_active",
            "kind",
            "percent_off",
            "amount",
            "currency",
            "duration",
            "duration_periods",
            "tariffs",
            "valid_from",
            "valid_until",
            "max_redemptions",
            "max_per_account",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.amount_off is not None:
            self.initial.setdefault(
                "amount", money_entry_format(self.instance.amount_off, self.instance.currency)
            )

    def rules_clean(self, instance: Any) -> None:
        promo_code_clean(promo=instance, tariffs=self.cleaned_data.get("tariffs") or [])

    def clean_code(self) -> str:
        # Upper case before the model's own checks see it; the rules are `promo_code_clean`'s.
        return promo_code_normalize(self.cleaned_data["code"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        # The amount in minor units is no form field: it is set here, where the currency is
        # known, as the tariff form does with its price.
        self.instance.amount_off = None
        currency = str(data.get("currency") or "").strip()
        if data.get("kind") == PromoKind.FIXED and data.get("amount") and currency:
            try:
                self.instance.amount_off = money_entry_parse(data["amount"], currency)
            except ValidationError as error:
                self.add_error("amount", error)
        return data
