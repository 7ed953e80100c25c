"""The accounting dashboard: its figures on a small known dataset, and who may see it."""

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing.models import Subscription, SubscriptionStatus
from billing.tests.factories import SubscriptionFactory
from payments.dashboard.charts import nice_ticks
from payments.dashboard.selectors import (
    DunningRow,
    FlowRow,
    MrrRow,
    RefundRow,
    RevenueRow,
    Subscribers,
    dashboard_figures,
    dashboard_window,
)
from payments.models import Payment, PaymentKind, PaymentStatus, Refund, RefundStatus
from payments.tests.factories import PaymentFactory
from tariffs.models import PeriodUnit
from tariffs.tests.factories import TariffFactory

pytestmark = pytest.mark.django_db

S = SubscriptionStatus
P = PaymentStatus
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
DASHBOARD_URL = "/admin/dashboard/"
_keys = itertools.count()


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@pytest.fixture
def tariffs():
    return {
        "rub_month": TariffFactory(amount=39900, currency="RUB"),
        "rub_year": TariffFactory(amount=399000, currency="RUB", period_unit=PeriodUnit.YEAR),
        "rub_quarter": TariffFactory(amount=100000, currency="RUB", period_count=3),
        "eur_month": TariffFactory(amount=999, currency="EUR"),
    }


def subscription(tariff, status=None, *, created="2026-01-10", **fields):
    if status is not None:
        fields["status"] = status
    made = SubscriptionFactory(tariff=tariff, **fields)
    # created_at is set on insert; the dashboard counts new subscriptions by it.
    Subscription.objects.filter(pk=made.pk).update(created_at=at(created))
    return made


def payment(sub, status=P.SUCCEEDED, *, paid=None, **fields):
    return PaymentFactory(
        subscription=sub,
        status=status,
        paid_at=at(paid) if paid else None,
        idempotency_key=f"test-{next(_keys)}",
        **fields,
    )


class TestRevenue:
    def test_gross_per_currency_per_day_and_month_with_refunds_beside_it(self, tariffs):
        rub, eur = subscription(tariffs["rub_month"]), subscription(tariffs["eur_month"])
        payment(rub, paid="2026-03-14")
        payment(rub, P.PARTIALLY_REFUNDED, paid="2026-03-14", refunded_amount=10000)
        payment(rub, P.REFUNDED, paid="2026-03-01", refunded_amount=39900)
        payment(eur, paid="2026-03-14")
        payment(rub, paid="2026-02-10")  # before the 30 days
        # Never money we got: not revenue.
        payment(rub, P.FAILED)
        payment(rub, P.PENDING)
        # Outside the windows (30 days, 12 months).
        payment(rub, paid="2025-02-28")

        figures = dashboard_figures(now=NOW)

        assert figures.revenue_daily == [
            RevenueRow(period=date(2026, 3, 1), currency="RUB", payments=1, gross=39900, refunded=39900),
            RevenueRow(period=date(2026, 3, 14), currency="EUR", payments=1, gross=999, refunded=0),
            RevenueRow(period=date(2026, 3, 14), currency="RUB", payments=2, gross=79800, refunded=10000),
        ]
        assert figures.revenue_monthly == [
            RevenueRow(period=date(2026, 2, 1), currency="RUB", payments=1, gross=39900, refunded=0),
            RevenueRow(period=date(2026, 3, 1), currency="EUR", payments=1, gross=999, refunded=0),
            RevenueRow(period=date(2026, 3, 1), currency="RUB", payments=3, gross=119700, refunded=49900),
        ]
        assert figures.revenue_monthly[-1].net == 69800
        assert figures.currencies == ["EUR", "RUB"]

    def test_days_are_cut_at_utc_midnight(self, tariffs):
        rub = subscription(tariffs["rub_month"])
        PaymentFactory(
            subscription=rub, paid_at=datetime(2026, 3, 13, 23, 59, tzinfo=UTC), idempotency_key="late"
        )
        PaymentFactory(
            subscription=rub, paid_at=datetime(2026, 3, 14, 0, 0, tzinfo=UTC), idempotency_key="early"
        )

        days = [(row.period, row.payments) for row in dashboard_figures(now=NOW).revenue_daily]

        assert days == [(date(2026, 3, 13), 1), (date(2026, 3, 14), 1)]

    def test_refunds_per_month_count_succeeded_refunds_by_when_they_succeeded(self, tariffs):
        paid = payment(subscription(tariffs["rub_month"]), P.PARTIALLY_REFUNDED, paid="2026-01-05")
        made = [
            Refund.objects.create(payment=paid, amount=amount, currency="RUB", status=status)
            for amount, status in (
                (5000, RefundStatus.SUCCEEDED),
                (7000, RefundStatus.SUCCEEDED),
                (900, RefundStatus.FAILED),
            )
        ]
        Refund.objects.filter(pk__in=[r.pk for r in made]).update(created_at=at("2026-02-10"))
        Refund.objects.filter(pk=made[0].pk).update(succeeded_at=at("2026-02-10"))
        # Asked for in February, approved and paid back in March: a March refund.
        Refund.objects.filter(pk=made[1].pk).update(succeeded_at=at("2026-03-02"))

        assert dashboard_figures(now=NOW).refunds_monthly == [
            RefundRow(period=date(2026, 2, 1), currency="RUB", refunds=1, amount=5000),
            RefundRow(period=date(2026, 3, 1), currency="RUB", refunds=1, amount=7000),
        ]


class TestSubscriptions:
    def test_mrr_normalises_yearly_and_multi_period_prices_to_a_month(self, tariffs):
        subscription(tariffs["rub_month"], S.ACTIVE)
        subscription(tariffs["rub_year"], S.PAST_DUE)
        subscription(tariffs["rub_quarter"], S.ACTIVE)
        subscription(tariffs["eur_month"], S.ACTIVE)
        subscription(tariffs["eur_month"], S.ACTIVE)
        # Not paying now.
        subscription(tariffs["rub_month"], S.TRIALING)
        subscription(tariffs["rub_month"], S.EXPIRED, ended_at=NOW)
        subscription(tariffs["rub_month"], pending=True)

        figures = dashboard_figures(now=NOW)

        # 399.00 + 3990.00 / 12 + 1000.00 / 3 = 399.00 + 332.50 + 333.333… → 1064.83
        assert figures.mrr == [
            MrrRow(currency="EUR", subscriptions=2, mrr=1998),
            MrrRow(currency="RUB", subscriptions=3, mrr=106483),
        ]
        assert figures.subscribers == Subscribers(trialing=1, active=4, past_due=1)

    def test_new_and_churned_split_voluntary_from_involuntary(self, tariffs):
        month = tariffs["rub_month"]
        subscription(month, created="2026-02-03")
        subscription(month, S.TRIALING, created="2026-03-01")
        # Viewer canceled (a past-due subscription ends at once).
        subscription(
            month, S.CANCELED, created="2025-12-01", canceled_at=at("2026-02-10"), ended_at=at("2026-02-10")
        )
        # Viewer canceled at period end, which came in March.
        subscription(
            month, S.EXPIRED, created="2025-12-01", canceled_at=at("2026-02-01"), ended_at=at("2026-03-05")
        )
        # Viewer turned autopay off.
        subscription(month, S.EXPIRED, created="2025-12-01", autopay=False, ended_at=at("2026-03-06"))
        # Dunning gave up.
        subscription(month, S.EXPIRED, created="2025-12-01", ended_at=at("2026-03-07"))
        subscription(month, S.EXPIRED, created="2025-12-01", ended_at=at("2026-03-08"))
        # An abandoned checkout never started: neither new nor churned.
        subscription(month, S.CANCELED, created="2026-03-02", pending=True, canceled_at=NOW, ended_at=NOW)

        assert dashboard_figures(now=NOW).flow == [
            FlowRow(month=date(2025, 12, 1), new=5, churned_voluntary=0, churned_involuntary=0),
            FlowRow(month=date(2026, 2, 1), new=1, churned_voluntary=1, churned_involuntary=0),
            FlowRow(month=date(2026, 3, 1), new=1, churned_voluntary=2, churned_involuntary=2),
        ]

    def test_dunning_recovery_is_recovered_over_settled_per_month_due(self, tariffs):
        month = tariffs["rub_month"]

        def declined_renewal(sub_status: str, status: str, due: str, attempts: int = 1) -> Payment:
            sub = subscription(month, sub_status, ended_at=NOW if sub_status == S.EXPIRED else None)
            return payment(
                sub,
                status,
                paid=due if status == P.SUCCEEDED else None,
                kind=PaymentKind.RENEWAL,
                failed_attempts=attempts,
                period_start=at(due),
                period_end=at(due) + timedelta(days=30),
            )

        declined_renewal(S.ACTIVE, P.SUCCEEDED, "2026-02-03", attempts=2)
        declined_renewal(S.ACTIVE, P.SUCCEEDED, "2026-02-04")
        declined_renewal(S.EXPIRED, P.FAILED, "2026-02-05", attempts=3)
        declined_renewal(S.PAST_DUE, P.FAILED, "2026-03-10")
        declined_renewal(S.ACTIVE, P.SUCCEEDED, "2026-03-11")
        # Renewed at the first try: never in dunning.
        declined_renewal(S.ACTIVE, P.SUCCEEDED, "2026-03-12", attempts=0)

        rows = dashboard_figures(now=NOW).dunning

        assert rows == [
            DunningRow(month=date(2026, 2, 1), entered=3, recovered=2, lost=1),
            DunningRow(month=date(2026, 3, 1), entered=2, recovered=1, lost=0),
        ]
        assert rows[0].recovery_rate == Decimal(2) / 3
        assert (rows[1].open, rows[1].recovery_rate) == (1, Decimal(1))


def test_window_ends_with_today_and_this_month():
    window = dashboard_window(now=NOW, days=3, months=3)

    assert window.days == [date(2026, 3, 13), date(2026, 3, 14), date(2026, 3, 15)]
    assert window.months == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert (window.day_end, window.month_end) == (at("2026-03-16", 0), at("2026-04-01", 0))


def test_axis_ticks_are_round_and_reach_the_top():
    assert nice_ticks(1234) == [0, 500, 1000, 1500]
    assert nice_ticks(0) == [0, 1]


class TestPage:
    def test_accountant_sees_the_charts_and_their_numbers(
        self, login_as, tariffs, django_assert_max_num_queries
    ):
        sub = subscription(tariffs["rub_month"])
        payment(sub, paid=datetime.now(UTC).date().isoformat())
        client = login_as("Accounting")

        # The session, the user, their permissions, then the dashboard's 8 aggregates and the
        # ledger's revenue by month.
        with django_assert_max_num_queries(15):
            response = client.get(DASHBOARD_URL)

        assert response.status_code == 200
        content = response.content.decode()
        assert content.count("<svg") >= 5
        assert "399.00 RUB" in content
        assert "Accounting dashboard" in content

    def test_queries_do_not_grow_with_the_data(self, login_as, tariffs, django_assert_max_num_queries):
        for number in range(20):
            sub = subscription(tariffs["rub_month" if number % 2 else "eur_month"])
            payment(sub, paid=(datetime.now(UTC) - timedelta(days=number * 17)).date().isoformat())

        client = login_as("Accounting")

        with django_assert_max_num_queries(15):
            assert client.get(DASHBOARD_URL).status_code == 200

    def test_support_is_refused(self, login_as):
        assert login_as("Support").get(DASHBOARD_URL).status_code == 403

    def test_superuser_may_see_it(self, client):
        client.force_login(User.objects.create_superuser(username="root", email="root@example.com"))

        assert client.get(DASHBOARD_URL).status_code == 200

    def test_anonymous_is_sent_to_the_admin_login(self, client):
        response = client.get(DASHBOARD_URL)

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    def test_admin_index_links_to_it_for_accountants_only(self, login_as, client):
        assert DASHBOARD_URL in login_as("Accounting").get(reverse("admin:index")).content.decode()
        client.logout()
        assert DASHBOARD_URL not in login_as("Support").get(reverse("admin:index")).content.decode()
