"""Our pages around the provider's checkout: what the viewer agrees to, and how it ended.

The review page states the terms before the viewer goes to the provider's page; the result
pages, where the provider sends the viewer back, show and never activate. Activation happens
only through `checkout_sync` (a verified webhook, or the server-side re-read the status
endpoint does); the redirect itself proves nothing.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, ngettext

from billing.models import Subscription, SubscriptionStatus
from billing.pages import every_period
from billing.pricing import amount_for_period
from billing.selectors import account_had_trial
from core import clock
from core.money import format_money
from notifications.templatetags.notice_format import day
from payments.models import CheckoutMode, CheckoutSession, PaymentKind
from payments.services.checkout import checkout_status
from tariffs.models import PromoKind, PromoRedemption
from tariffs.selectors import promo_redemption_for_subscription


@dataclass(frozen=True)
class CheckoutTerms:
    """What a checkout makes the viewer agree to, in words of the active language."""

    plan: str
    # "399.00 RUB every month": the price after any trial or discount runs out.
    price: str
    # What this page takes today ("Today: 399.00 RUB"), or that it saves a card only.
    today: str
    # The trial, the discount and how long it lasts, the renewal rule: one sentence each.
    details: list[str]


@dataclass(frozen=True)
class CheckoutOutcome:
    """What a settled checkout did: the amount paid and the next charge, in words."""

    paid: str
    next_charge: str


def _price(subscription: Subscription) -> str:
    tariff = subscription.tariff
    words = every_period(unit=tariff.period_unit, count=tariff.period_count)
    return f"{format_money(subscription.amount, subscription.currency)} {words}"


def _discount(redemption: PromoRedemption, currency: str) -> str:
    off = (
        f"{redemption.value}%"
        if redemption.kind == PromoKind.PERCENT
        else format_money(redemption.value, redemption.currency or currency)
    )
    if redemption.periods is None:
        return gettext("Promo code %(code)s: %(off)s off every period.") % {
            "code": redemption.promo.code,
            "off": off,
        }
    return ngettext(
        "Promo code %(code)s: %(off)s off the first period.",
        "Promo code %(code)s: %(off)s off the first %(count)d periods.",
        redemption.periods,
    ) % {"code": redemption.promo.code, "off": off, "count": redemption.periods}


def checkout_terms(*, checkout: CheckoutSession) -> CheckoutTerms:
    """Return the terms of a checkout: the plan, its price per period, what is paid today, and why."""
    subscription = checkout.subscription
    tariff = subscription.tariff
    price = _price(subscription)
    details: list[str] = []
    payment = checkout.payment
    if checkout.mode == CheckoutMode.CARD_UPDATE:
        today = gettext("Nothing is charged: this saves a new card.")
        details.append(gettext("Your renewals use the new card from then on."))
        return CheckoutTerms(plan=tariff.name_for(), price=price, today=today, details=details)
    if payment is not None and payment.kind != PaymentKind.INITIAL:
        today = gettext("To pay now: %(amount)s") % {"amount": format_money(payment.amount, payment.currency)}
        if payment.period_start and payment.period_end:
            details.append(
                gettext("For the period from %(start)s to %(end)s.")
                % {"start": day(payment.period_start), "end": day(payment.period_end)}
            )
        return CheckoutTerms(plan=tariff.name_for(), price=price, today=today, details=details)

    redemption = promo_redemption_for_subscription(subscription_id=subscription.pk)
    if redemption is not None:
        details.append(_discount(redemption, subscription.currency))
    trial = (
        checkout.mode == CheckoutMode.SETUP
        and tariff.trial_days > 0
        and not account_had_trial(account_id=subscription.account_id, excluding=subscription.pk)
    )
    if trial:
        # The trial starts when the card is saved: today, as far as the viewer is concerned.
        trial_end = subscription.trial_end or clock.now() + timedelta(days=tariff.trial_days)
        first = amount_for_period(subscription=subscription, period_start=trial_end)
        today = gettext("Nothing to pay today: your card is saved for later.")
        values = {"days": tariff.trial_days, "date": day(trial_end), "price": price}
        if first == subscription.amount:
            sentence = ngettext(
                "Free for %(days)d day, until %(date)s; then %(price)s.",
                "Free for %(days)d days, until %(date)s; then %(price)s.",
                tariff.trial_days,
            )
        else:  # a promo code discounts the first charges after the trial
            values["amount"] = format_money(first, subscription.currency)
            sentence = ngettext(
                "Free for %(days)d day, until %(date)s; then %(amount)s, and %(price)s after the discount.",
                "Free for %(days)d days, until %(date)s; then %(amount)s, and %(price)s after the discount.",
                tariff.trial_days,
            )
        details.append(sentence % values)
    elif payment is None:
        today = gettext("Nothing to pay today: the first period is free, your card is saved for later.")
    else:
        today = gettext("To pay now: %(amount)s") % {"amount": format_money(payment.amount, payment.currency)}
    if subscription.autopay:
        details.append(
            gettext("Renews automatically at %(price)s until you cancel; cancel any time from your account.")
            % {"price": price}
        )
    return CheckoutTerms(plan=tariff.name_for(), price=price, today=today, details=details)


def checkout_outcome(*, checkout: CheckoutSession) -> CheckoutOutcome | None:
    """Return what a complete checkout paid and when the next charge is, once its subscription runs."""
    subscription = checkout.subscription
    running = subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
    if checkout.status != "complete" or not running or subscription.current_period_end is None:
        return None
    payment = checkout.payment
    paid = (
        gettext("Paid: %(amount)s") % {"amount": format_money(payment.amount, payment.currency)}
        if payment is not None
        else gettext("Nothing was charged.")
    )
    end = subscription.current_period_end
    if subscription.cancel_at_period_end or not subscription.autopay:
        return CheckoutOutcome(
            paid=paid, next_charge=gettext("No further charge: access until %(date)s.") % {"date": day(end)}
        )
    amount = amount_for_period(subscription=subscription, period_start=end)
    next_charge = gettext("Next charge: %(amount)s on %(date)s.") % {
        "amount": format_money(amount, subscription.currency),
        "date": day(end),
    }
    return CheckoutOutcome(paid=paid, next_charge=next_charge)


def _checkout_from_query(request: HttpRequest) -> CheckoutSession:
    try:
        checkout_id = uuid.UUID(request.GET.get("checkout", ""))
    except ValueError as exc:
        raise Http404("No such checkout") from exc
    checkout = checkout_status(checkout_id=checkout_id)
    if checkout is None:
        raise Http404("No such checkout")
    return checkout


def checkout_review(request: HttpRequest) -> HttpResponse:
    """Render the terms of a checkout and the way on to the provider's page."""
    checkout = _checkout_from_query(request)
    return render(
        request, "checkout/review.html", {"checkout": checkout, "terms": checkout_terms(checkout=checkout)}
    )


def result_strings() -> dict[str, str]:
    """Return the texts the result page's script shows, in the active language."""
    return {
        "received": gettext("Payment received"),
        "active_detail": gettext("Your subscription is active. Enjoy watching!"),
        "trial_started": gettext("Your free trial has started"),
        "trial_detail": gettext(
            "Your card is saved; the first charge happens when the trial ends. Enjoy watching!"
        ),
        "finishing": gettext(
            "We are finishing your subscription. Contact support if access does not appear soon."
        ),
        "card_saved": gettext("Your new card is saved"),
        "card_saved_detail": gettext("Your renewals use it from now on."),
        "expired": gettext("The payment page expired"),
        "expired_detail": gettext("Nothing was charged. You can subscribe again at any time."),
        "failed": gettext("Your payment did not go through"),
        "declined": gettext("The card was declined."),
        "nothing_charged": gettext("Nothing was charged."),
        "still_waiting": gettext("Still waiting for confirmation"),
        "still_waiting_detail": gettext(
            "Your payment is being confirmed. You can close this page; access appears as soon as it is confirmed."
        ),
    }


def checkout_success(request: HttpRequest) -> HttpResponse:
    """Render the page that follows the payment until it settles and says what happened."""
    checkout = _checkout_from_query(request)
    context = {
        "strings": result_strings(),
        "checkout": checkout,
        "terms": checkout_terms(checkout=checkout),
        "outcome": checkout_outcome(checkout=checkout),
        "card_update": checkout.mode == CheckoutMode.CARD_UPDATE,
    }
    return render(request, "checkout/success.html", context)


def checkout_cancel(request: HttpRequest) -> HttpResponse:
    """Render the page for a viewer who left the payment page without paying."""
    checkout = _checkout_from_query(request)
    return render(
        request, "checkout/cancel.html", {"checkout": checkout, "terms": checkout_terms(checkout=checkout)}
    )
