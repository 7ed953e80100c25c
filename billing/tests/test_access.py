"""The access answer the frontend polls: cheap (one query) and right in every state."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from accounts.models import BillingAccount
from accounts.principals import MAX_USER_ID_LENGTH
from accounts.tests.factories import BillingAccountFactory
from billing.models import SubscriptionStatus
from billing.selectors import access_for_user
from billing.serializers import AccessOutputSerializer
from billing.tests.factories import SubscriptionFactory

S = SubscriptionStatus
pytestmark = pytest.mark.django_db
ACCESS_URL = "/api/v1/access/"


def access_of(viewer_client, user_id: str) -> dict:
    response = viewer_client(user_id).get(ACCESS_URL)
    assert response.status_code == 200
    return response.json()


def subscription_ending(delta: timedelta, **fields):
    now = timezone.now()
    return SubscriptionFactory(
        current_period_start=now - timedelta(days=30), current_period_end=now + delta, **fields
    )


class TestHasAccess:
    @pytest.mark.parametrize("status", [S.TRIALING, S.ACTIVE])
    def test_running_subscription_gives_access(self, viewer_client, status):
        subscription = subscription_ending(timedelta(days=10), status=status)
        body = access_of(viewer_client, subscription.account.user_id)
        assert body["has_access"] is True
        assert body["subscription"]["id"] == str(subscription.pk)
        assert body["subscription"]["status"] == status
        assert body["subscription"]["tariff"] == {
            "id": subscription.tariff.pk,
            "slug": subscription.tariff.slug,
            "name": subscription.tariff.name,
        }

    def test_past_due_keeps_access_within_the_grace_period(self, viewer_client, settings):
        settings.BILLING_GRACE_PERIOD = timedelta(days=3)
        subscription = subscription_ending(-timedelta(days=2), status=S.PAST_DUE)
        assert access_of(viewer_client, subscription.account.user_id)["has_access"] is True

    def test_past_due_loses_access_after_the_grace_period(self, viewer_client, settings):
        settings.BILLING_GRACE_PERIOD = timedelta(days=3)
        subscription = subscription_ending(-timedelta(days=3, minutes=1), status=S.PAST_DUE)
        body = access_of(viewer_client, subscription.account.user_id)
        assert body["has_access"] is False
        assert body["subscription"]["status"] == S.PAST_DUE

    def test_grace_period_is_a_setting(self, viewer_client, settings):
        settings.BILLING_GRACE_PERIOD = timedelta(days=7)
        subscription = subscription_ending(-timedelta(days=5), status=S.PAST_DUE)
        assert access_of(viewer_client, subscription.account.user_id)["has_access"] is True

    def test_active_subscription_about_to_renew_keeps_access_while_the_renewal_runs(self, viewer_client):
        subscription = subscription_ending(-timedelta(hours=1), status=S.ACTIVE, autopay=True)
        assert access_of(viewer_client, subscription.account.user_id)["has_access"] is True

    def test_active_subscription_canceled_at_period_end_stops_at_period_end(self, viewer_client):
        subscription = subscription_ending(-timedelta(minutes=1), status=S.ACTIVE, cancel_at_period_end=True)
        assert access_of(viewer_client, subscription.account.user_id)["has_access"] is False

    def test_active_subscription_without_autopay_stops_at_period_end(self, viewer_client):
        subscription = subscription_ending(-timedelta(minutes=1), status=S.ACTIVE, autopay=False)
        assert access_of(viewer_client, subscription.account.user_id)["has_access"] is False

    def test_pending_subscription_is_shown_without_access(self, viewer_client):
        subscription = SubscriptionFactory(pending=True)
        body = access_of(viewer_client, subscription.account.user_id)
        assert body["has_access"] is False
        assert body["subscription"]["status"] == S.PENDING
        assert body["subscription"]["current_period_end"] is None

    @pytest.mark.parametrize("status", [S.CANCELED, S.EXPIRED])
    def test_ended_subscription_gives_no_access_and_no_subscription(self, viewer_client, status):
        subscription = subscription_ending(-timedelta(days=1), status=status)
        assert access_of(viewer_client, subscription.account.user_id) == {
            "has_access": False,
            "subscription": None,
        }

    def test_the_live_subscription_is_shown_next_to_old_ended_ones(self, viewer_client):
        account = BillingAccountFactory()
        subscription_ending(-timedelta(days=40), status=S.EXPIRED, account=account)
        live = subscription_ending(timedelta(days=20), status=S.ACTIVE, account=account)
        assert access_of(viewer_client, account.user_id)["subscription"]["id"] == str(live.pk)

    def test_another_viewers_subscription_gives_no_access(self, viewer_client):
        subscription_ending(
            timedelta(days=10), status=S.ACTIVE, account=BillingAccountFactory(user_id="payer")
        )
        assert access_of(viewer_client, "freeloader") == {"has_access": False, "subscription": None}


class TestCost:
    def test_steady_state_access_request_is_one_query(self, viewer_client, django_assert_num_queries):
        subscription = subscription_ending(timedelta(days=10), status=S.ACTIVE)
        client = viewer_client(subscription.account.user_id)
        with django_assert_num_queries(1):
            assert client.get(ACCESS_URL).json()["has_access"] is True

    def test_account_without_subscription_is_one_query(self, viewer_client, django_assert_num_queries):
        account = BillingAccountFactory()
        client = viewer_client(account.user_id)
        with django_assert_num_queries(1):
            assert client.get(ACCESS_URL).json()["has_access"] is False

    def test_first_request_opens_the_account(self, viewer_client):
        assert access_of(viewer_client, "newcomer") == {"has_access": False, "subscription": None}
        assert BillingAccount.objects.filter(user_id="newcomer").exists()


class TestInternalAccess:
    def test_internal_services_get_the_same_answer(self, viewer_client, service_client):
        subscription = subscription_ending(timedelta(days=10), status=S.ACTIVE)
        user_id = subscription.account.user_id
        internal = service_client.get(f"/api/v1/internal/access/{user_id}/")
        assert internal.status_code == 200
        assert internal.json() == access_of(viewer_client, user_id)

    def test_unknown_user_has_no_access_and_no_account_is_created(self, service_client):
        response = service_client.get("/api/v1/internal/access/nobody/")
        assert response.json() == {"has_access": False, "subscription": None}
        assert not BillingAccount.objects.exists()

    def test_a_user_id_no_account_could_have_is_a_field_error(self, service_client):
        response = service_client.get(f"/api/v1/internal/access/{'x' * (MAX_USER_ID_LENGTH + 1)}/")
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], list(error["details"])) == ("validation_error", ["user_id"])

    def test_internal_lookup_is_one_query(self, service_client, django_assert_num_queries):
        subscription = subscription_ending(timedelta(days=10), status=S.ACTIVE)
        with django_assert_num_queries(1):
            service_client.get(f"/api/v1/internal/access/{subscription.account.user_id}/")


class TestAnswerShape:
    """The endpoint builds its answer directly; the documented serializer must still describe it."""

    @pytest.mark.parametrize("status", [S.TRIALING, S.ACTIVE, S.PAST_DUE, S.PENDING, S.EXPIRED])
    def test_answer_is_what_the_documented_serializer_gives(self, viewer_client, status):
        if status == S.PENDING:
            subscription = SubscriptionFactory(pending=True)
        else:
            subscription = subscription_ending(timedelta(days=10), status=status)
        user_id = subscription.account.user_id
        documented = AccessOutputSerializer(access_for_user(user_id=user_id).access).data
        assert access_of(viewer_client, user_id) == json.loads(JSONRenderer().render(documented))
