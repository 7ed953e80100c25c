"""The demo's `billing_advance` runs the notice jobs of each day it passes, the card-expiry warning included."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from config.settings import base as base_settings
from core import clock
from notifications.models import Notice, NoticeKind
from payments.models import ProviderCustomer

pytestmark = pytest.mark.django_db


def test_a_card_expiring_before_the_renewal_is_warned_about_as_the_days_pass(
    paid_subscription, memory_provider, settings
):
    settings.CARD_UPDATE_URL = "https://cinema.example/storefront/#payment-method"
    subscription = paid_subscription()
    now = clock.now()
    # The saved card works through this month only; the renewal is a month away.
    ProviderCustomer.objects.filter(account=subscription.account).update(
        card_exp_month=now.month, card_exp_year=now.year
    )
    assert subscription.current_period_end is not None
    warned_from = subscription.current_period_end - timedelta(days=settings.NOTICE_CARD_EXPIRY_DAYS)

    call_command("billing_advance", days=(warned_from - now).days - 1, stdout=StringIO())
    assert not Notice.objects.filter(kind=NoticeKind.CARD_EXPIRING).exists()

    call_command("billing_advance", days=2, stdout=StringIO())
    [notice] = Notice.objects.filter(kind=NoticeKind.CARD_EXPIRING)
    assert notice.subscription_id == subscription.pk
    assert notice.context["update_url"] == "https://cinema.example/storefront/#payment-method"

    call_command("billing_advance", days=1, stdout=StringIO())  # the next day's run warns no more
    assert Notice.objects.filter(kind=NoticeKind.CARD_EXPIRING).count() == 1


def test_the_card_expiry_email_leads_to_the_account_pages_card_by_default():
    # #payment-method: the card line of templates/storefront/account.js, which shows it on arrival.
    assert (
        base_settings.CARD_UPDATE_URL.removeprefix(base_settings.PUBLIC_BASE_URL)
        == "/storefront/#payment-method"
    )
