"""The durable "confirm your payment" link: a page of ours that opens a fresh provider page when needed."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail, signing
from django.test import TestCase

from billing.models import SubscriptionStatus
from core import clock
from notifications.services.notices import notices_dispatch
from payments.gateways.errors import GatewayError
from payments.models import (
    CheckoutSession,
    CheckoutStatus,
    Payment,
    PaymentKind,
    PaymentStatus,
    ProviderCustomer,
)
from payments.services.action_links import action_link_payment_id, action_link_token, action_link_url
from payments.services.checkout import REUSE_MARGIN, checkout_sync
from payments.services.renewals import RenewalOutcome, renewal_run, subscriptions_expire_due

pytestmark = pytest.mark.django_db
S = SubscriptionStatus
ASKS_FOR_AUTHENTICATION = "4000002760003184"
SOFT_DECLINE_OFF_SESSION = "4000000000000341"


def move_to(moment) -> None:
    clock.advance(max(moment - clock.now(), timedelta(0)))


@pytest.fixture
def renewal_to_confirm(paid_subscription, memory_provider):
    """Return a renewal the bank asked the viewer to confirm (the subscription is past due)."""
    subscription = paid_subscription(card=ASKS_FOR_AUTHENTICATION)
    move_to(subscription.current_period_end)
    assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.AUTHENTICATION_REQUIRED
    return Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)


def follow(client, payment: Payment):
    return client.get(action_link_url(payment_id=payment.pk).removeprefix(settings.PUBLIC_BASE_URL))


def pages_of(payment: Payment) -> list[CheckoutSession]:
    return list(CheckoutSession.objects.filter(payment=payment).order_by("created_at"))


class TestToken:
    def test_token_names_the_payment_and_nothing_else_passes(self, renewal_to_confirm):
        token = action_link_token(payment_id=renewal_to_confirm.pk)
        assert action_link_payment_id(token=token) == renewal_to_confirm.pk
        altered = token[:-1] + ("A" if token[-1] != "A" else "B")
        other_purpose = signing.Signer(salt="something-else").sign(renewal_to_confirm.pk.hex)
        for forged in (altered, other_purpose, renewal_to_confirm.pk.hex, "", "a:b:c", "%00"):
            assert action_link_payment_id(token=forged) is None

    @pytest.mark.parametrize("token", ["not-a-token", "0" * 32 + ":forged", "x" * 300])
    def test_forged_token_answers_a_404_page_never_a_500(self, client, token):
        response = client.get(f"/pay/{token}/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert "not valid" in response.content.decode()

    def test_altered_token_of_a_real_payment_is_a_404_and_opens_nothing(
        self, client, renewal_to_confirm, memory_provider
    ):
        pages_before = len(memory_provider.calls("create_checkout_session"))
        token = action_link_token(payment_id=renewal_to_confirm.pk)
        response = client.get(f"/pay/{token[:-2]}xy/")
        assert response.status_code == 404
        assert len(memory_provider.calls("create_checkout_session")) == pages_before

    def test_signed_id_of_no_payment_is_a_404(self, client):
        token = action_link_token(payment_id=uuid.uuid4())
        assert client.get(f"/pay/{token}/").status_code == 404


class TestFollowingTheLink:
    def test_link_opens_the_renewal_page_and_hands_it_out_again_while_it_is_open(
        self, client, renewal_to_confirm, memory_provider
    ):
        first = follow(client, renewal_to_confirm)
        again = follow(client, renewal_to_confirm)

        assert first.status_code == again.status_code == 302
        (page,) = pages_of(renewal_to_confirm)
        assert first["Location"] == again["Location"] == page.url
        assert page.provider_session_id in {s.id for s in memory_provider.checkout_sessions()}
        assert "no-cache" in first["Cache-Control"]

    def test_fresh_page_once_the_old_one_expired_on_the_billing_clock_and_it_pays_the_same_payment(
        self, client, renewal_to_confirm, memory_provider
    ):
        old_url = follow(client, renewal_to_confirm)["Location"]
        (old,) = pages_of(renewal_to_confirm)
        clock.advance(settings.CHECKOUT_SESSION_TTL + timedelta(minutes=1))

        response = follow(client, renewal_to_confirm)

        assert response.status_code == 302
        old_row, fresh = pages_of(renewal_to_confirm)
        assert response["Location"] == fresh.url != old_url
        assert (old_row.pk, old_row.status, fresh.status) == (
            old.pk,
            CheckoutStatus.EXPIRED,
            CheckoutStatus.OPEN,
        )
        assert fresh.payment_id == old.payment_id == renewal_to_confirm.pk
        assert memory_provider.gateway.retrieve_checkout_session(old.provider_session_id).status == "expired"

        # The fresh page pays that very renewal, once.
        memory_provider.pay(fresh.provider_session_id, "5555555555554444")
        checkout_sync(provider_session_id=fresh.provider_session_id)
        renewal_to_confirm.refresh_from_db()
        assert renewal_to_confirm.status == PaymentStatus.SUCCEEDED
        assert renewal_to_confirm.subscription.status == S.ACTIVE
        assert len([c for c in memory_provider.charges() if c.status == "succeeded"]) == 2  # signup + renewal

    def test_page_close_to_its_end_is_expired_at_the_provider_before_a_fresh_one_opens(
        self, client, renewal_to_confirm, memory_provider
    ):
        follow(client, renewal_to_confirm)
        (old,) = pages_of(renewal_to_confirm)
        # Still payable at the provider for a few minutes: too short to hand out, too long to leave open.
        move_to(old.expires_at - REUSE_MARGIN + timedelta(seconds=1))

        assert follow(client, renewal_to_confirm).status_code == 302

        assert memory_provider.gateway.retrieve_checkout_session(old.provider_session_id).status == "expired"
        assert [p.status for p in pages_of(renewal_to_confirm)] == [
            CheckoutStatus.EXPIRED,
            CheckoutStatus.OPEN,
        ]

    def test_paid_renewal_shows_already_paid(self, client, renewal_to_confirm, memory_provider):
        follow(client, renewal_to_confirm)
        (page,) = pages_of(renewal_to_confirm)
        memory_provider.pay(page.provider_session_id, "4242424242424242")
        checkout_sync(provider_session_id=page.provider_session_id)

        response = follow(client, renewal_to_confirm)

        assert response.status_code == 200
        assert "already made" in response.content.decode()
        assert "399.00 RUB" in response.content.decode()
        assert len(pages_of(renewal_to_confirm)) == 1

    def test_page_paid_without_our_knowing_is_found_instead_of_opening_another(
        self, client, renewal_to_confirm, memory_provider
    ):
        follow(client, renewal_to_confirm)
        (page,) = pages_of(renewal_to_confirm)
        memory_provider.pay(page.provider_session_id, "4242424242424242")  # no webhook yet
        move_to(page.expires_at)

        response = follow(client, renewal_to_confirm)

        assert response.status_code == 200
        assert "already made" in response.content.decode()
        renewal_to_confirm.refresh_from_db()
        assert renewal_to_confirm.status == PaymentStatus.SUCCEEDED
        assert len(pages_of(renewal_to_confirm)) == 1

    def test_given_up_renewal_shows_it_can_no_longer_be_paid(
        self, client, renewal_to_confirm, memory_provider, viewer_client
    ):
        follow(client, renewal_to_confirm)
        move_to(renewal_to_confirm.period_start + settings.BILLING_GRACE_PERIOD + timedelta(minutes=1))
        assert subscriptions_expire_due(now=clock.now()) == 1
        pages_before = len(memory_provider.calls("create_checkout_session"))

        response = follow(client, renewal_to_confirm)

        assert response.status_code == 200
        assert "can no longer be made" in response.content.decode()
        assert len(memory_provider.calls("create_checkout_session")) == pages_before
        detail = viewer_client("alice").get(f"/api/v1/subscriptions/{renewal_to_confirm.subscription_id}/")
        assert detail.json()["payment_action_url"] is None

    def test_provider_outage_answers_a_503_page_and_the_next_follow_opens_the_same_checkout(
        self, client, renewal_to_confirm, memory_provider, monkeypatch
    ):
        gateway = memory_provider.gateway
        real_create = gateway.create_checkout_session

        def down(request):
            raise GatewayError("provider down", retryable=True)

        monkeypatch.setattr(gateway, "create_checkout_session", down)
        response = follow(client, renewal_to_confirm)
        assert response.status_code == 503
        assert response["Retry-After"]
        monkeypatch.setattr(gateway, "create_checkout_session", real_create)

        assert follow(client, renewal_to_confirm).status_code == 302
        (page,) = pages_of(renewal_to_confirm)  # the row written before the outage, opened now
        assert page.provider_session_id

    def test_page_follows_the_viewers_language(self, client, renewal_to_confirm):
        response = client.get(
            f"/pay/{action_link_token(payment_id=renewal_to_confirm.pk)}x/", HTTP_ACCEPT_LANGUAGE="ru"
        )
        assert response.status_code == 404
        assert '<html lang="ru">' in response.content.decode()


class TestWhereTheLinkIsGiven:
    def test_subscription_carries_the_durable_link_which_outlives_the_provider_page(
        self, client, renewal_to_confirm, viewer_client
    ):
        url = f"/api/v1/subscriptions/{renewal_to_confirm.subscription_id}/"
        link = viewer_client("alice").get(url).json()["payment_action_url"]
        assert link == action_link_url(payment_id=renewal_to_confirm.pk)
        assert link.startswith(f"{settings.PUBLIC_BASE_URL}/pay/")

        clock.advance(settings.CHECKOUT_SESSION_TTL * 3)
        listed = viewer_client("alice").get("/api/v1/subscriptions/").json()["results"][0]
        assert listed["payment_action_url"] == link
        assert follow(client, renewal_to_confirm).status_code == 302

    @pytest.mark.parametrize("hard", [False, True], ids=["soft-decline-retried", "hard-decline"])
    def test_declined_renewal_offers_no_link(
        self, paid_subscription, memory_provider, viewer_client, client, hard
    ):
        subscription = paid_subscription(card=SOFT_DECLINE_OFF_SESSION)
        if hard:  # nothing to charge: the viewer updates the card, which retries at once
            ProviderCustomer.objects.filter(account=subscription.account).update(payment_method_ref="")
        move_to(subscription.current_period_end)
        assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.DECLINED
        detail = viewer_client("alice").get(f"/api/v1/subscriptions/{subscription.pk}/").json()
        assert (detail["status"], detail["payment_action_url"]) == ("past_due", None)
        # A retry may charge the saved card: a page paid as well would be a second charge.
        payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        response = follow(client, payment)
        assert response.status_code == 200
        assert "can no longer be made" in response.content.decode()
        assert CheckoutSession.objects.filter(payment=payment).count() == 0

    def test_confirm_your_payment_email_carries_our_link_not_the_providers(
        self, paid_subscription, memory_provider
    ):
        subscription = paid_subscription(card=ASKS_FOR_AUTHENTICATION)
        move_to(subscription.current_period_end)
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert renewal_run(subscription_id=subscription.pk) == RenewalOutcome.AUTHENTICATION_REQUIRED
        mail.outbox.clear()
        subscription.account.email = "alice@example.com"
        subscription.account.save()

        notices_dispatch(now=clock.now())

        payment = Payment.objects.get(subscription=subscription, kind=PaymentKind.RENEWAL)
        link = action_link_url(payment_id=payment.pk)
        (email,) = [
            m
            for m in mail.outbox
            if m.extra_headers.get("X-Billing-Notice-Kind") == "authentication_required"
        ]
        html = email.alternatives[0][0]
        assert link in email.body and link in html
        provider_page = CheckoutSession.objects.get(payment=payment).url
        assert provider_page and provider_page not in email.body and provider_page not in html
