"""The access cache: repeated polls skip the database, and every committed change still shows.

These tests commit for real (NOTIFY is delivered at commit) and make their changes through a
connection of their own, as another process would.
"""

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg2
import pytest
from django.db import connections, transaction
from django.utils import timezone

from accounts.tests.factories import BillingAccountFactory
from billing import access_cache as access_cache_module
from billing import selectors
from billing.access_cache import (
    LIVENESS_SECONDS,
    AccessCache,
    access_cache,
    access_cache_stop,
    access_cache_wait_until_usable,
)
from billing.models import SubscriptionStatus
from billing.tests import test_access
from billing.tests.factories import SubscriptionFactory
from core import clock

S = SubscriptionStatus
pytestmark = pytest.mark.django_db(transaction=True)
ACCESS_URL = "/api/v1/access/"
WAIT_SECONDS = 20.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Poll until `condition()` is truthy and return it; fail (not flake) only after a long wait."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for {what}.")
        time.sleep(0.02)


@pytest.fixture
def cache(settings) -> Iterator[AccessCache[Any]]:
    """Turn the access cache on for this test, with its listener listening, and stop it after."""
    settings.BILLING_ACCESS_CACHE = True
    access_cache_stop()
    started = access_cache_wait_until_usable(timeout=WAIT_SECONDS)
    assert started is not None
    yield started
    # Before the test database is flushed or dropped: the listener holds a connection to it.
    access_cache_stop()


@pytest.fixture
def other_connection() -> Iterator[Any]:
    """Return an autocommit connection of its own, as another process making changes would hold."""
    parameters = connections["default"].get_connection_params()
    parameters.pop("cursor_factory", None)
    other = psycopg2.connect(**parameters)
    other.autocommit = True
    yield other
    other.close()


@pytest.fixture
def settle(cache, other_connection, monkeypatch) -> Callable[[], None]:
    """Return a function that waits until the listener has applied every change committed so far.

    Notifications reach a listener in commit order, so once a marker sent now has arrived,
    so have those of the test's own set-up (which would otherwise, arriving during a
    request's query, rightly keep that request's row out of the cache).
    """
    seen: list[str] = []
    notified = cache.notified

    def recording(payload: str) -> None:
        seen.append(payload)
        notified(payload)

    monkeypatch.setattr(cache, "notified", recording)
    markers = iter(range(1, 1_000_000))

    def wait() -> None:
        marker = f"a:-{next(markers)}"  # no account has a negative id
        execute(other_connection, "SELECT pg_notify('billing_access', %s)", [marker])
        wait_for(lambda: marker in seen, "the listener to catch up")

    return wait


def execute(other: Any, statement: str, parameters: list[Any] | None = None) -> None:
    with other.cursor() as cursor:
        cursor.execute(statement, parameters)


def active_subscription(**fields):
    now = timezone.now()
    return SubscriptionFactory(
        status=S.ACTIVE,
        current_period_start=now - timedelta(days=1),
        current_period_end=now + timedelta(days=10),
        **fields,
    )


class TestCachedPolls:
    def test_repeated_poll_is_answered_without_a_query(
        self, settle, viewer_client, django_assert_num_queries
    ):
        subscription = active_subscription()
        settle()
        client = viewer_client(subscription.account.user_id)
        with django_assert_num_queries(1):
            first = client.get(ACCESS_URL).json()
        with django_assert_num_queries(0):
            assert client.get(ACCESS_URL).json() == first
        assert first["has_access"] is True

    def test_internal_lookup_uses_the_same_cache(self, settle, service_client, django_assert_num_queries):
        subscription = active_subscription()
        settle()
        url = f"/api/v1/internal/access/{subscription.account.user_id}/"
        with django_assert_num_queries(1):
            first = service_client.get(url).json()
        with django_assert_num_queries(0):
            assert service_client.get(url).json() == first

    def test_first_request_of_an_unknown_viewer_is_not_cached(
        self, cache, settle, viewer_client, django_assert_num_queries
    ):
        client = viewer_client("newcomer")
        assert client.get(ACCESS_URL).json() == {"has_access": False, "subscription": None}
        assert cache.get("newcomer") is None
        settle()
        with django_assert_num_queries(1):
            client.get(ACCESS_URL)  # the account now exists: this answer is kept...
        with django_assert_num_queries(0):
            assert client.get(ACCESS_URL).json() == {"has_access": False, "subscription": None}

    def test_access_rule_is_applied_at_each_request_not_cached(self, cache, settle, viewer_client):
        # The cache holds the row; whether it gives access depends on when one asks.
        subscription = active_subscription(autopay=False)
        settle()
        client = viewer_client(subscription.account.user_id)
        assert client.get(ACCESS_URL).json()["has_access"] is True
        clock.advance(timedelta(days=11))
        body = client.get(ACCESS_URL).json()
        assert body["has_access"] is False
        assert body["subscription"]["status"] == S.ACTIVE
        assert cache.stats.hits >= 1


class TestInsideATransaction:
    def test_cached_row_does_not_hide_the_transactions_own_change(self, settle, cache):
        subscription = active_subscription()
        settle()
        user_id = subscription.account.user_id
        assert selectors.access_for_user(user_id=user_id).access.has_access is True
        assert cache.get(user_id) is not None

        with transaction.atomic():
            subscription.status = S.EXPIRED
            subscription.save(update_fields=["status"])
            assert selectors.access_for_user(user_id=user_id).access.has_access is False
            transaction.set_rollback(True)

    def test_uncommitted_row_is_never_kept(self, settle, cache):
        subscription = active_subscription()
        settle()
        user_id = subscription.account.user_id

        with transaction.atomic():
            subscription.status = S.EXPIRED
            subscription.save(update_fields=["status"])
            assert selectors.access_for_user(user_id=user_id).access.has_access is False
            transaction.set_rollback(True)

        # Rolled back, so no notification will ever come: the expired row must not be kept.
        assert cache.get(user_id) is None
        assert selectors.access_for_user(user_id=user_id).access.has_access is True


class TestCommittedChangesShow:
    def test_change_committed_by_another_connection_reaches_the_cached_answer(
        self, cache, viewer_client, other_connection
    ):
        subscription = active_subscription()
        client = viewer_client(subscription.account.user_id)
        assert client.get(ACCESS_URL).json()["has_access"] is True
        assert client.get(ACCESS_URL).json()["has_access"] is True  # from the cache
        execute(
            other_connection,
            "UPDATE billing_subscription SET status = %s WHERE id = %s",
            [S.EXPIRED.value, str(subscription.pk)],
        )
        wait_for(
            lambda: client.get(ACCESS_URL).json() == {"has_access": False, "subscription": None},
            "the expiry to show",
        )

    def test_uncommitted_change_does_not_show_and_its_commit_does(
        self, settle, viewer_client, other_connection, django_assert_num_queries
    ):
        subscription = active_subscription()
        settle()
        client = viewer_client(subscription.account.user_id)
        client.get(ACCESS_URL)
        other_connection.autocommit = False
        execute(
            other_connection,
            "UPDATE billing_subscription SET cancel_at_period_end = true WHERE id = %s",
            [str(subscription.pk)],
        )
        with django_assert_num_queries(0):
            assert client.get(ACCESS_URL).json()["subscription"]["cancel_at_period_end"] is False
        other_connection.commit()
        wait_for(
            lambda: client.get(ACCESS_URL).json()["subscription"]["cancel_at_period_end"] is True,
            "the cancellation to show",
        )

    def test_new_subscription_of_a_cached_account_shows(self, cache, viewer_client):
        account = BillingAccountFactory()
        client = viewer_client(account.user_id)
        assert client.get(ACCESS_URL).json()["has_access"] is False
        assert client.get(ACCESS_URL).json()["has_access"] is False  # from the cache
        active_subscription(account=account)  # committed: the test runs in autocommit
        wait_for(lambda: client.get(ACCESS_URL).json()["has_access"], "the new subscription to show")

    def test_subscription_moved_to_another_account_leaves_both_right(
        self, cache, viewer_client, other_connection
    ):
        subscription = active_subscription()
        newcomer = BillingAccountFactory()
        giver, taker = viewer_client(subscription.account.user_id), viewer_client(newcomer.user_id)
        assert giver.get(ACCESS_URL).json()["has_access"] is True
        assert taker.get(ACCESS_URL).json()["has_access"] is False
        execute(
            other_connection,
            "UPDATE billing_subscription SET account_id = %s WHERE id = %s",
            [newcomer.pk, str(subscription.pk)],
        )
        wait_for(lambda: taker.get(ACCESS_URL).json()["has_access"], "the taker's access")
        assert giver.get(ACCESS_URL).json()["has_access"] is False

    def test_tariff_rename_shows_for_every_cached_viewer(
        self, cache, settle, viewer_client, other_connection
    ):
        first = active_subscription()
        second = active_subscription(tariff=first.tariff)
        clients = [viewer_client(first.account.user_id), viewer_client(second.account.user_id)]
        settle()
        for client in clients:
            client.get(ACCESS_URL)
        assert len(cache) == 2
        execute(
            other_connection, "UPDATE tariffs_tariff SET name = 'Renamed' WHERE id = %s", [first.tariff_id]
        )
        for client in clients:
            wait_for(
                lambda client=client: (
                    client.get(ACCESS_URL).json()["subscription"]["tariff"]["name"] == "Renamed"
                ),
                "the new tariff name",
            )

    def test_account_handed_to_another_user_id_is_forgotten(self, cache, viewer_client, other_connection):
        subscription = active_subscription()
        old_user_id = subscription.account.user_id
        client = viewer_client(old_user_id)
        assert client.get(ACCESS_URL).json()["has_access"] is True
        execute(
            other_connection,
            "UPDATE accounts_billingaccount SET user_id = 'renamed-user' WHERE id = %s",
            [subscription.account_id],
        )
        wait_for(lambda: cache.get(old_user_id) is None, "the old user id to be forgotten")
        assert viewer_client("renamed-user").get(ACCESS_URL).json()["has_access"] is True


class TestStaleStoreRace:
    def test_row_read_before_a_commit_is_not_kept_after_its_notification(
        self, cache, settle, viewer_client, other_connection, monkeypatch, django_assert_num_queries
    ):
        subscription = active_subscription()
        settle()
        client = viewer_client(subscription.account.user_id)
        read = selectors._access_row

        def read_then_let_a_change_commit(user_id: str):
            # The request has read the row; another transaction now commits a change to it,
            # and its notification is processed, all before the request stores what it read.
            row = read(user_id)
            generation = cache.generation()
            execute(
                other_connection,
                "UPDATE billing_subscription SET status = %s WHERE id = %s",
                [S.CANCELED.value, str(subscription.pk)],
            )
            wait_for(lambda: cache.generation() != generation, "the notification")
            return row

        monkeypatch.setattr(selectors, "_access_row", read_then_let_a_change_commit)
        # Read before the commit, so it answers as the row was: right at the time of reading.
        assert client.get(ACCESS_URL).json()["has_access"] is True
        monkeypatch.setattr(selectors, "_access_row", read)
        assert cache.get(subscription.account.user_id) is None
        assert cache.stats.refused == 1
        with django_assert_num_queries(1):
            assert client.get(ACCESS_URL).json() == {"has_access": False, "subscription": None}


class TestListenerFailure:
    def test_lost_listener_clears_the_cache_and_caching_stops_until_it_listens_again(
        self, cache, settle, viewer_client, other_connection, monkeypatch, django_assert_num_queries
    ):
        subscription = active_subscription()
        settle()
        client = viewer_client(subscription.account.user_id)
        client.get(ACCESS_URL)
        assert len(cache) == 1

        connect, reachable = access_cache_module._connect_listener, [False]

        def unreachable_for_now(parameters):
            if not reachable[0]:
                raise psycopg2.OperationalError("the database is unreachable (test)")
            return connect(parameters)

        monkeypatch.setattr(access_cache_module, "_connect_listener", unreachable_for_now)
        execute(
            other_connection,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'billing-access-listener' AND datname = current_database()",
        )
        wait_for(lambda: not cache.usable(), "the listener to notice")
        assert len(cache) == 0
        for _ in range(2):
            with django_assert_num_queries(1):
                assert client.get(ACCESS_URL).json()["has_access"] is True
        assert len(cache) == 0

        reachable[0] = True
        wait_for(cache.usable, "the listener to listen again")
        settle()
        client.get(ACCESS_URL)
        with django_assert_num_queries(0):
            assert client.get(ACCESS_URL).json()["has_access"] is True


class TestCacheRules:
    """The cache object alone, on a clock of the test's own."""

    @pytest.fixture
    def now(self) -> list[float]:
        return [1000.0]

    @pytest.fixture
    def listening(self, now) -> AccessCache[str]:
        rows: AccessCache[str] = AccessCache(max_entries=3, clock=lambda: now[0])
        rows.listening_started()
        return rows

    def test_nothing_is_cached_before_listening(self, now):
        rows = AccessCache(clock=lambda: now[0])
        assert rows.generation() is None
        assert not rows.store("u1", account_id=1, value="row", generation=0)
        assert rows.get("u1") is None

    def test_row_read_before_a_notification_is_refused(self, listening):
        generation = listening.generation()
        assert generation is not None
        listening.notified("a:99")  # any account: the counter is global
        assert not listening.store("u1", account_id=1, value="stale", generation=generation)
        assert listening.get("u1") is None

    def test_notification_forgets_only_its_account(self, listening):
        for number in (1, 2):
            generation = listening.generation()
            assert generation is not None
            assert listening.store(f"u{number}", account_id=number, value="row", generation=generation)
        listening.notified("a:1")
        assert listening.get("u1") is None
        assert listening.get("u2") is not None

    @pytest.mark.parametrize("payload", ["*", "something-newer"])
    def test_flush_and_unknown_payloads_forget_everything(self, listening, payload):
        generation = listening.generation()
        assert generation is not None
        listening.store("u1", account_id=1, value="row", generation=generation)
        listening.notified(payload)
        assert len(listening) == 0

    def test_size_is_bounded(self, listening):
        for number in range(10):
            generation = listening.generation()
            assert generation is not None
            listening.store(f"u{number}", account_id=number, value="row", generation=generation)
        assert len(listening) == 3
        assert listening.get("u9") is not None

    def test_silent_listener_is_not_trusted(self, listening, now):
        generation = listening.generation()
        assert generation is not None
        listening.store("u1", account_id=1, value="row", generation=generation)
        now[0] += LIVENESS_SECONDS
        assert listening.get("u1") is None
        assert listening.generation() is None
        listening.heard()
        assert listening.get("u1") is not None

    def test_lost_listener_forgets_everything(self, listening):
        generation = listening.generation()
        assert generation is not None
        listening.store("u1", account_id=1, value="row", generation=generation)
        listening.listening_lost()
        listening.heard()
        assert listening.get("u1") is None
        assert not listening.store("u1", account_id=1, value="row", generation=generation)


class TestOff:
    def test_off_by_setting(self, settings, viewer_client, django_assert_num_queries):
        settings.BILLING_ACCESS_CACHE = False
        assert access_cache() is None
        account = BillingAccountFactory()
        client = viewer_client(account.user_id)
        client.get(ACCESS_URL)
        with django_assert_num_queries(1):
            client.get(ACCESS_URL)

    def test_off_on_sqlite(self, settings, monkeypatch):
        settings.BILLING_ACCESS_CACHE = True
        access_cache_stop()
        monkeypatch.setattr(connections["default"], "vendor", "sqlite")
        try:
            assert access_cache() is None
        finally:
            access_cache_stop()


class TestHasAccessWithTheCache(test_access.TestHasAccess):
    """Every access state of billing/tests/test_access.py, answered from the cache as well."""

    @pytest.fixture(autouse=True)
    def _twice(self, settle, monkeypatch):
        def access_of_twice(viewer_client, user_id: str) -> dict:
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            settle()
            client = viewer_client(user_id)
            first = client.get(ACCESS_URL)
            with CaptureQueriesContext(connection) as queries:
                second = client.get(ACCESS_URL)
            assert first.status_code == second.status_code == 200
            assert second.json() == first.json()
            assert len(queries) == 0 or user_id == "freeloader"
            return second.json()

        monkeypatch.setattr(test_access, "access_of", access_of_twice)
