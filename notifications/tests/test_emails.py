"""Every email reads right in Russian and English, as text and as HTML: tariff, amounts, dates, card."""

from datetime import datetime
from html import unescape
from typing import Any

import pytest
from django.core import mail
from django.utils.html import strip_tags

from notifications.emails import notice_render
from notifications.models import Notice, NoticeKind
from notifications.services.notices import notices_dispatch
from payments.gateways import get_gateway

K = NoticeKind
NBSP = "\u00a0"
RU_MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]
EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

FACTS: dict[str, dict[str, Any]] = {
    K.PAYMENT_SUCCEEDED: {
        "tariff_name": "Yearly HD",
        "payment_id": "3d1f6a0e-2c4b-4e8f-a1d7-5b9c0e2f4a6d",
        "amount": 399000,
        "currency": "RUB",
        "period_start": "2027-03-01T09:00:00Z",
        "period_end": "2028-03-01T09:00:00Z",
        "paid_at": "2027-03-01T09:00:05Z",
        "card_brand": "visa",
        "card_last4": "4242",
    },
    K.RENEWAL_FAILED: {
        "tariff_name": "Monthly",
        "amount": 39900,
        "currency": "RUB",
        "failure_code": "insufficient_funds",
        "decline_reason": "insufficient_funds",
        "next_retry_at": "2027-04-02T09:00:00Z",
        "access_until": "2027-04-04T09:00:00Z",
        "card_brand": "mastercard",
        "card_last4": "4444",
    },
    K.AUTHENTICATION_REQUIRED: {
        "tariff_name": "Monthly",
        "amount": 39900,
        "currency": "RUB",
        "period_start": "2027-04-01T09:00:00Z",
        "period_end": "2027-05-01T09:00:00Z",
        "access_until": "2027-04-04T09:00:00Z",
        "action_url": "https://checkout.stripe.com/c/pay/cs_test_123",
        "action_expires_at": "2027-04-01T10:00:00Z",
    },
    K.REFUND_ISSUED: {
        "tariff_name": "Monthly",
        "refund_amount": 10000,
        "refunded_total": 10000,
        "payment_amount": 39900,
        "currency": "RUB",
        "full": False,
        "paid_at": "2027-03-01T09:00:05Z",
        "card_brand": "visa",
        "card_last4": "4242",
    },
    K.EXPIRING_SOON: {
        "tariff_name": "Monthly",
        "amount": 39900,
        "currency": "RUB",
        "period_end": "2027-04-01T09:00:00Z",
        "autopay": False,
        "canceled": False,
        "will_renew": False,
        "card_brand": "visa",
        "card_last4": "4242",
    },
    K.TRIAL_ENDING: {
        "tariff_name": "Yearly HD",
        "amount": 399000,
        "currency": "RUB",
        "period_end": "2027-03-08T09:00:00Z",
        "autopay": True,
        "canceled": False,
        "will_renew": True,
        "card_brand": "visa",
        "card_last4": "4242",
    },
    K.EXPIRED: {
        "tariff_name": "Monthly",
        "ended_at": "2027-04-04T09:00:00Z",
        "period_end": "2027-04-01T09:00:00Z",
        "reason": "payment_failed",
    },
}

# What a reader must find in the subject and in both bodies of each email.
EXPECTED = {
    (K.PAYMENT_SUCCEEDED, "en"): [
        "Yearly HD",
        "3,990.00 RUB",
        "1 March 2027 – 1 March 2028",  # noqa: RUF001 - the en dash of a period
        "1 March 2027, 09:00 UTC",
        "Visa •••• 4242",
        "3d1f6a0e-2c4b-4e8f-a1d7-5b9c0e2f4a6d",
        "paid until 1 March 2028",
    ],
    (K.PAYMENT_SUCCEEDED, "ru"): [
        "Yearly HD",
        f"3{NBSP}990,00{NBSP}₽",
        "с 1 марта 2027 по 1 марта 2028",  # noqa: RUF001 - Russian words
        "1 марта 2027, 09:00 UTC",
        "Visa •••• 4242",
        "Спасибо за оплату",
        "оплачена до 1 марта 2028",
    ],
    (K.RENEWAL_FAILED, "en"): [
        "Monthly",
        "399.00 RUB",
        "Mastercard •••• 4444",
        "declined: there is not enough money on the card",
        "try again automatically on 2 April 2027",
        "access to the cinema until 4 April 2027",
    ],
    (K.RENEWAL_FAILED, "ru"): [
        "Monthly",
        f"399,00{NBSP}₽",
        "Mastercard •••• 4444",
        "отклонил платёж: на карте недостаточно денег",
        "повторим попытку 2 апреля 2027",
        "сохранится до 4 апреля 2027",
    ],
    (K.AUTHENTICATION_REQUIRED, "en"): [
        "399.00 RUB",
        "https://checkout.stripe.com/c/pay/cs_test_123",
        "1 April 2027, 10:00 UTC",
        "until 4 April 2027",
    ],
    (K.AUTHENTICATION_REQUIRED, "ru"): [
        f"399,00{NBSP}₽",
        "https://checkout.stripe.com/c/pay/cs_test_123",
        "до 1 апреля 2027, 10:00 UTC",
        "подтвердить платёж",
    ],
    (K.REFUND_ISSUED, "en"): ["100.00 RUB", "399.00 RUB", "1 March 2027", "Visa •••• 4242", "Monthly"],
    (K.REFUND_ISSUED, "ru"): [f"100,00{NBSP}₽", f"399,00{NBSP}₽", "от 1 марта 2027", "Visa •••• 4242"],
    (K.EXPIRING_SOON, "en"): ["ends on 1 April 2027", "automatic renewal is off", "399.00 RUB"],
    (K.EXPIRING_SOON, "ru"): ["закончится 1 апреля 2027", "автопродление выключено", f"399,00{NBSP}₽"],
    (K.TRIAL_ENDING, "en"): ["trial of Yearly HD ends on 8 March 2027", "3,990.00 RUB", "Visa •••• 4242"],
    (K.TRIAL_ENDING, "ru"): ["закончится 8 марта 2027", f"3{NBSP}990,00{NBSP}₽", "Visa •••• 4242"],
    (K.EXPIRED, "en"): ["Monthly", "ended on 4 April 2027", "could not take the payment"],
    (K.EXPIRED, "ru"): ["Monthly", "закончилась 4 апреля 2027", "не удалось списать оплату"],
}


def shown(html: str) -> str:
    """Return the text a mail client shows for an HTML body (tags dropped, entities decoded)."""
    return " ".join(unescape(strip_tags(html)).replace(NBSP, "\0").split()).replace("\0", NBSP)


def rendered(kind: str, language: str, **changes):
    notice = Notice(kind=kind, context={**FACTS[kind], **changes})
    return notice_render(notice, language=language)


@pytest.mark.parametrize(("kind", "language"), sorted(EXPECTED))
def test_each_email_says_the_facts_in_its_language_as_text_and_html(kind, language):
    email = rendered(kind, language)

    assert email.language == language
    html_text = shown(email.html)
    for fact in EXPECTED[kind, language]:
        assert fact in email.text, fact
        assert fact in html_text, fact
    assert email.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}">' in email.html
    for output in (email.subject, email.text, email.html):
        assert "{{" not in output and "None" not in output
    assert "\n" not in email.subject


def test_subjects_are_written_in_the_readers_language():
    assert rendered(K.PAYMENT_SUCCEEDED, "en").subject == "Payment received: Yearly HD, 3,990.00 RUB"
    assert (
        rendered(K.PAYMENT_SUCCEEDED, "ru").subject == f"Оплата получена: «Yearly HD», 3{NBSP}990,00{NBSP}₽"
    )
    assert rendered(K.EXPIRED, "ru").subject == "Подписка «Monthly» закончилась"


def test_a_language_without_templates_falls_back_to_english():
    email = rendered(K.EXPIRED, "de")
    assert email.language == "en"
    assert email.subject == "Your Monthly subscription has ended"


def test_what_happens_next_follows_the_facts():
    hard = rendered(K.RENEWAL_FAILED, "en", next_retry_at=None)
    assert "We will not try this card again" in hard.text
    assert "subscribe again with another card" in hard.text
    partial = rendered(K.REFUND_ISSUED, "en")
    full = rendered(K.REFUND_ISSUED, "en", refund_amount=39900, refunded_total=39900, full=True)
    assert "In all, 100.00 RUB" in partial.text
    assert "In all" not in full.text
    canceled_trial = rendered(K.TRIAL_ENDING, "ru", will_renew=False, canceled=True)
    assert "Вы отменили подписку" in canceled_trial.text
    assert "деньги не спишутся" in canceled_trial.text


@pytest.mark.parametrize(
    ("provider_code", "en", "ru"),
    [
        ("insufficient_funds", "there is not enough money on the card", "на карте недостаточно денег"),
        ("expired_card", "the card has expired", "срок действия карты истёк"),
        ("stolen_card", "the card is blocked", "карта заблокирована"),
        ("lost_card", "the card is blocked", "карта заблокирована"),
    ],
)
def test_a_decline_is_explained_in_our_words_whatever_the_providers_code(provider_code, en, ru):
    # notify.renewal_declined asks the payment's provider what its code means.
    reason = get_gateway("stripe").decline_reason(provider_code)

    assert en in rendered(K.RENEWAL_FAILED, "en", failure_code=provider_code, decline_reason=reason).text
    assert ru in rendered(K.RENEWAL_FAILED, "ru", failure_code=provider_code, decline_reason=reason).text


def test_a_decline_without_a_reason_of_ours_says_only_that_it_was_declined():
    reason = get_gateway("stripe").decline_reason("do_not_honor")
    text = rendered(K.RENEWAL_FAILED, "en", failure_code="do_not_honor", decline_reason=reason).text

    assert reason == "other"
    assert "the payment was declined." in text


def test_html_escapes_what_it_shows():
    email = rendered(K.EXPIRED, "en", tariff_name="<b>Monthly</b> & more")
    assert "&lt;b&gt;Monthly&lt;/b&gt; &amp; more" in email.html
    assert "<b>Monthly</b> & more" in email.text


def ru_day(moment: datetime) -> str:
    return f"{moment.day} {RU_MONTHS[moment.month - 1]} {moment.year}"


def en_day(moment: datetime) -> str:
    return f"{moment.day} {EN_MONTHS[moment.month - 1]} {moment.year}"


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ru", "en"])
def test_receipt_of_a_real_payment_states_its_tariff_amount_period_and_card(paid_subscription, language):
    subscription = paid_subscription()
    account = subscription.account
    account.email, account.language = "alice@example.com", language
    account.save()

    assert notices_dispatch() == 1

    (message,) = mail.outbox
    html = message.alternatives[0][0]
    day = ru_day if language == "ru" else en_day
    start, end = subscription.current_period_start, subscription.current_period_end
    expected = {
        "ru": [f"399,00{NBSP}₽", f"с {day(start)} по {day(end)}", "Visa •••• 4242", "Тариф:"],  # noqa: RUF001 - Russian
        "en": ["399.00 RUB", f"{day(start)} – {day(end)}", "Visa •••• 4242", "Tariff:"],  # noqa: RUF001 - en dash
    }[language]
    for fact in expected:
        assert fact in message.body, fact
        assert fact.rstrip(":") in shown(html), fact
    assert "Monthly" in message.subject
    assert message.alternatives[0][1] == "text/html"
