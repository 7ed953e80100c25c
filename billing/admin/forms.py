"""The forms support fills in on a subscription: a goodwill extension and a cancellation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.dateparse import parse_datetime
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.services import EXTENSION_MAX_DAYS
from payments.models import RefundReason

if TYPE_CHECKING:  # django-stubs-ext is a development requirement only
    from django_stubs_ext import StrOrPromise

WHEN_NOW, WHEN_PERIOD_END = "now", "period_end"


def _days_help_text() -> str:
    # Translated when the form is shown: `gettext_lazy(...) % values` would be English for good.
    return gettext("1 to %(max)d days added to the current period, free of charge.") % {
        "max": EXTENSION_MAX_DAYS
    }


def _reason_field(help_text: StrOrPromise) -> forms.CharField:
    """Return the field where staff say why they act; the audit log keeps what they write."""
    return forms.CharField(
        label=_("reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=help_text,
    )


class ExtendForm(forms.Form):
    """What support chooses for one goodwill extension; `period_end` is the end the form was shown for."""

    days = forms.IntegerField(
        label=_("days"),
        min_value=1,
        max_value=EXTENSION_MAX_DAYS,
        help_text=lazy(_days_help_text, str)(),
    )
    reason = _reason_field(_("Why the viewer gets these days; kept in the audit log."))
    # A resubmitted or stale form is refused by the service instead of extending twice.
    period_end = forms.CharField(widget=forms.HiddenInput)

    def clean_period_end(self) -> Any:
        try:
            value = parse_datetime(self.cleaned_data["period_end"])
        except ValueError:  # well formed but impossible, such as 30 February
            value = None
        if value is None:
            raise forms.ValidationError(_("The form is out of date; open it again."))
        return value


class CancelForm(forms.Form):
    """What support chooses for one cancellation; `request_key` makes the form's submissions one."""

    when = forms.ChoiceField(
        label=_("access ends"),
        widget=forms.RadioSelect,
        initial=WHEN_PERIOD_END,
        choices=[
            (WHEN_PERIOD_END, _("at the end of the current period (autopay is turned off)")),
            (WHEN_NOW, _("now")),
        ],
    )
    refund = forms.BooleanField(
        label=_("refund what is left"),
        required=False,
        help_text=_("Only when access ends now: the unused part of the paid period, counted to the second."),
    )
    refund_reason = forms.ChoiceField(
        label=_("refund reason"), choices=RefundReason.choices, initial=RefundReason.REQUESTED_BY_CUSTOMER
    )
    reason = _reason_field(_("Why the subscription is canceled; kept in the audit log."))
    # Generated when the form is shown: a second submission of the same form cancels and refunds once.
    request_key = forms.UUIDField(widget=forms.HiddenInput)
    # The moment the confirmation page priced the refund at, so that what it said is what is refunded.
    priced_at = forms.DateTimeField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, may_refund: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_refund = may_refund

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("refund"):
            if not self.may_refund:
                raise forms.ValidationError(_("You may not refund payments."))
            if cleaned.get("when") != WHEN_NOW:
                raise forms.ValidationError(
                    _("What is left is refunded only when access ends now; at the period end it is used.")
                )
        return cleaned
