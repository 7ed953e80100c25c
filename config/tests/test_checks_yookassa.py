"""With YooKassa a provider, `check --deploy` names its missing key and unreadable notification addresses."""

from config.tests.test_checks import our_messages

WITH_YOOKASSA = {
    "stripe": "payments.gateways.stripe_setup.gateway_from_settings",
    "yookassa": "payments.gateways.yookassa.setup.gateway_from_settings",
}


def test_a_configured_yookassa_passes():
    assert our_messages(PAYMENT_PROVIDERS=WITH_YOOKASSA, YOOKASSA_SECRET_KEY="live_x") == {}


def test_yookassa_without_its_secret_key_is_named():
    messages = our_messages(PAYMENT_PROVIDERS=WITH_YOOKASSA, YOOKASSA_SECRET_KEY="")

    assert list(messages) == ["billing.E012"]


def test_an_unreadable_notification_address_is_named():
    messages = our_messages(
        PAYMENT_PROVIDERS=WITH_YOOKASSA,
        YOOKASSA_SECRET_KEY="live_x",
        YOOKASSA_NOTIFICATION_IPS=["185.71.76.0/27", "yookassa.ru"],
    )

    assert list(messages) == ["billing.E013"]


def test_nothing_is_asked_of_yookassa_when_it_is_not_a_provider():
    assert our_messages(YOOKASSA_SECRET_KEY="", YOOKASSA_NOTIFICATION_IPS=["nonsense"]) == {}
