"""The demo storefront: a stand-in for the cinema's frontend, using only the public API.

It is the viewer's account page: plan, next charge, card, plan changes, cancel/resume/autopay,
payment history with refunds and refund requests. Everything it shows comes from the API in
the browser; the server only renders the page, a token for the demo viewer and the texts the
page's script needs in the viewer's language (`strings`, read with `json_script`).
"""

from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext, ngettext, pgettext

from accounts.tokens import TokenError, issue_token
from billing.models import SubscriptionStatus
from core.money import NBSP, RUSSIAN_CURRENCY_SIGNS, THREE_DECIMAL_CURRENCIES, ZERO_DECIMAL_CURRENCIES
from payments.models import PaymentKind, PaymentStatus, RefundRequestStatus, RefundStatus
from tariffs.models import PeriodUnit, Tariff

DEMO_VIEWER_ID = "demo-viewer"
DEMO_VIEWER_EMAIL = "viewer@example.com"
DEMO_TOKEN_TTL_SECONDS = 24 * 3600


def every_period(*, unit: str, count: int) -> str:
    """Return how often a price is charged, as people say it: "every month", "every 3 months"."""
    # The same words as the tariff admin's (tariffs/admin/display.py), so one translation serves both.
    if count == 1:
        return gettext("every year") if unit == PeriodUnit.YEAR else gettext("every month")
    if unit == PeriodUnit.YEAR:
        return ngettext("every %(count)d year", "every %(count)d years", count) % {"count": count}
    return ngettext("every %(count)d month", "every %(count)d months", count) % {"count": count}


def trial_days_phrase(days: int) -> str:
    """Return a trial's length: "7-day free trial"."""
    return ngettext("%(days)d-day free trial", "%(days)d-day free trial", days) % {"days": days}


def _money_format() -> dict[str, Any]:
    """Return what the page's script needs to write money exactly as `core.money.format_money` does."""
    russian = (translation.get_language() or "en").startswith("ru")
    return {
        "zero_decimal": sorted(ZERO_DECIMAL_CURRENCIES),
        "three_decimal": sorted(THREE_DECIMAL_CURRENCIES),
        "group": NBSP if russian else ",",
        "decimal": "," if russian else ".",
        "between": NBSP if russian else " ",
        "signs": RUSSIAN_CURRENCY_SIGNS if russian else {},
    }


def storefront_strings() -> dict[str, Any]:
    """Return every text the account page's script shows, in the active language."""
    # Periods and trial lengths of every tariff (an inactive one may still be a viewer's plan):
    # their plural forms are the catalogue's business, not the script's.
    terms = Tariff.objects.values_list("period_unit", "period_count", "trial_days").distinct()
    return {
        "language": translation.get_language() or "en",
        "money": _money_format(),
        "periods": {f"{unit}:{count}": every_period(unit=unit, count=count) for unit, count, _ in terms},
        "trials": {str(days): trial_days_phrase(days) for _, _, days in terms if days},
        "subscription_status": {value: str(label) for value, label in SubscriptionStatus.choices},
        "payment_status": {value: str(label) for value, label in PaymentStatus.choices},
        "payment_kind": {
            PaymentKind.INITIAL: gettext("First payment"),
            PaymentKind.RENEWAL: gettext("Renewal"),
            PaymentKind.CHANGE: gettext("Plan change"),
        },
        "refund_status": {value: str(label) for value, label in RefundStatus.choices},
        "refund_request_status": {value: str(label) for value, label in RefundRequestStatus.choices},
        "text": {
            "access_yes": gettext("Access: yes"),
            "access_no": gettext("Access: no"),
            "not_signed_in": gettext("Not signed in"),
            "signed_in_as": gettext("Signed in as %(id)s"),
            "no_subscription": gettext("You have no subscription now. Choose a plan below."),
            "plan": gettext("Plan"),
            "status": gettext("Status"),
            "next_charge": gettext("Next charge"),
            "next_charge_value": gettext("%(amount)s on %(date)s"),
            "due_now": gettext("%(amount)s, due now: waiting for your confirmation"),
            "no_charge_canceled": gettext("None: your subscription ends on %(date)s"),
            "no_charge_autopay_off": gettext("None: autopay is off, access until %(date)s"),
            "trial_until": gettext("Free trial until %(date)s, then %(price)s"),
            "retry_on": gettext("We will try again on %(date)s."),
            "card": gettext("Card on file"),
            "no_card": gettext("No card saved"),
            "card_expires": gettext("expires %(month)s/%(year)s"),
            "update_card": gettext("Update card"),
            "autopay": gettext("Autopay"),
            "autopay_on": pgettext("autopay", "on"),
            "autopay_off": pgettext("autopay", "off"),
            "turn_autopay_on": gettext("Turn autopay on"),
            "turn_autopay_off": gettext("Turn autopay off"),
            "cancel": gettext("Cancel subscription"),
            "confirm_cancel": gettext(
                "Cancel your subscription? You keep access until %(date)s and nothing is charged again."
            ),
            "resume": gettext("Resume subscription"),
            "canceled_note": gettext("Canceled: access until %(date)s."),
            "complete_payment": gettext("Complete payment"),
            "pending_note": gettext("Your subscription starts once the payment is complete."),
            "confirm_payment": gettext("Confirm payment"),
            "past_due_note": gettext(
                "Your bank could not take the last renewal. Confirm the payment to keep watching."
            ),
            "scheduled_change": gettext("Changes to %(plan)s on %(date)s."),
            "keep_plan": gettext("Keep my current plan"),
            "subscribe": gettext("Subscribe"),
            "switch": gettext("Switch to this plan"),
            "your_plan": gettext("Your plan"),
            "trial_then": gettext("then %(price)s"),
            "preview_title": gettext("Switch to %(plan)s"),
            "preview_loading": gettext("Working out the price…"),
            "preview_upgrade": gettext(
                "%(amount)s is charged now to your card on file. Your new plan starts at once "
                "and runs until %(date)s, then renews at %(price)s."
            ),
            "preview_downgrade": gettext(
                "Nothing is charged now. Your plan changes on %(date)s, then renews at %(price)s."
            ),
            "confirm_change": gettext("Confirm the change"),
            "never_mind": gettext("Never mind"),
            "changed": gettext("Your plan is changed."),
            "change_scheduled": gettext("Your plan change is scheduled."),
            "history": gettext("Payment history"),
            "no_payments": gettext("No payments yet."),
            "refunds": gettext("Refunds"),
            "no_refunds": gettext("No refunds."),
            "refund_requests": gettext("Refund requests"),
            "no_refund_requests": gettext("No refund requests."),
            "ask_refund": gettext("Ask for a refund"),
            "reason_required": gettext("Please say why you want this payment back."),
            "refund_requested": gettext("Your refund request is sent. Support will answer by email."),
            "col_date": gettext("Date"),
            "col_what": gettext("What"),
            "col_amount": gettext("Amount"),
            "col_status": gettext("Status"),
            "col_refunded": gettext("Refunded"),
            "col_reason": gettext("Reason"),
            "col_decision": gettext("Decision"),
            "col_actions": gettext("Actions"),
            "period_from_to": pgettext("a paid period", "%(start)s to %(end)s"),
            "not_available": gettext("This is not available yet. Please try again later."),
            "error": gettext("Something went wrong. Please retry."),
            "offline": gettext("The billing service cannot be reached. Please retry."),
        },
    }


def storefront(request: HttpRequest) -> HttpResponse:
    """Render the account page, signed in as the demo viewer when tokens can be issued here."""
    if not settings.STOREFRONT_ENABLED:
        raise Http404("The demo storefront is not enabled")
    try:
        token = issue_token(
            user_id=DEMO_VIEWER_ID, email=DEMO_VIEWER_EMAIL, ttl_seconds=DEMO_TOKEN_TTL_SECONDS
        )
    except TokenError:
        token = ""  # RS256 deployments: paste a token from the auth service instead.
    return render(request, "storefront/index.html", {"demo_token": token, "strings": storefront_strings()})
