"""Staff logins are throttled: wrong passwords lock one username out from one address for a while."""

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.translation import override

from accounts.tests.roles import staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _throttle_on(settings):
    """Turn the throttle on, as in every deployment (the test settings leave it off)."""
    settings.AXES_ENABLED = True


LOGIN_URL = "/admin/login/?next=/admin/"
PASSWORD = "right-password-1"
LIMIT = 5  # ADMIN_LOGIN_FAILURE_LIMIT's default


@pytest.fixture
def support() -> User:
    user = staff_member("Support", "support")
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(username: str, password: str, address: str = "203.0.113.7", **headers: Any):
    """Post the admin's login form from an address (headers as WSGI names); return the answer."""
    return Client().post(
        LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def signed_in(response) -> bool:
    """Return whether a login answer is the redirect of a successful login."""
    return response.status_code == 302 and response["Location"] == "/admin/"


def fail(times: int, username: str = "support", address: str = "203.0.113.7") -> None:
    for _ in range(times):
        response = log_in(username, "wrong", address)
        assert response.status_code in (200, 429)


class TestLockout:
    def test_five_wrong_passwords_then_the_right_one_is_refused(self, support):
        fail(LIMIT - 1)
        assert log_in("support", "wrong").status_code == 429  # the fifth wrong one locks

        refused = log_in("support", PASSWORD)

        assert refused.status_code == 429
        assert not signed_in(refused)
        page = refused.content.decode()
        assert "Too many failed logins" in page
        assert 'id="site-name"' in page  # the admin's header: its look, not a bare text
        assert "Try again in 15 minutes" in page

    def test_the_lockout_page_speaks_the_staff_members_language(self, support):
        fail(LIMIT)

        with override("ru"):
            refused = log_in("support", PASSWORD, HTTP_ACCEPT_LANGUAGE="ru")

        assert refused.status_code == 429
        assert '<html lang="ru"' in refused.content.decode()

    def test_another_address_is_not_locked(self, support):
        fail(LIMIT)

        assert signed_in(log_in("support", PASSWORD, address="198.51.100.20"))

    def test_another_username_from_the_same_address_is_not_locked(self, support):
        other = staff_member("Support", "other")
        other.set_password(PASSWORD)
        other.save()
        fail(LIMIT)

        assert signed_in(log_in("other", PASSWORD))

    def test_a_success_resets_the_count(self, support):
        fail(LIMIT - 1)
        assert signed_in(log_in("support", PASSWORD))

        fail(LIMIT - 1)

        assert signed_in(log_in("support", PASSWORD))

    def test_after_the_cool_off_the_right_password_works(self, support):
        fail(LIMIT)
        AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

        assert signed_in(log_in("support", PASSWORD))

    @override_settings(TRUSTED_PROXY_IPS=["10.0.0.1"])
    def test_behind_the_proxy_each_client_address_counts_on_its_own(self, support):
        via_proxy = {"address": "10.0.0.1"}
        for _ in range(LIMIT):
            log_in("support", "wrong", **via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")

        assert log_in("support", PASSWORD, **via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
        assert signed_in(log_in("support", PASSWORD, **via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.20"))

    def test_a_forged_forwarded_address_from_a_client_changes_nothing(self, support):
        for index in range(LIMIT):
            log_in("support", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{index}")

        assert log_in("support", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == 429


class TestOthersAreUnaffected:
    def test_the_viewer_api_answers_from_a_locked_out_address(self, support, viewer_client):
        fail(LIMIT)

        response = viewer_client("alice").get("/api/v1/access/", REMOTE_ADDR="203.0.113.7")

        assert response.status_code == 200
        assert AccessAttempt.objects.get().failures_since_start == LIMIT

    def test_a_forced_login_of_tests_still_works(self, support, client):
        fail(LIMIT)
        client.force_login(support)

        assert client.get("/admin/").status_code == 200

    def test_client_login_works_with_the_throttle_off_as_in_the_other_tests(self, support, client, settings):
        settings.AXES_ENABLED = False

        assert client.login(username="support", password=PASSWORD)
