"""bench/admin on a tiny dataset in the test database: it builds, and every page it times answers."""

import pytest
from django.test import Client

from bench.admin import BASELINE, Outcome, measure, pages, results_table
from bench.admin_dataset import dataset_build, staff_create
from core import clock
from payments.dashboard.selectors import dashboard_figures
from payments.models import Payment, PaymentStatus

pytestmark = pytest.mark.django_db


def test_builds_exactly_the_payments_asked_for_and_times_every_page():
    sizes = dataset_build(subscriptions=60, payments=400)
    client = Client()
    client.force_login(staff_create())
    outcome = Outcome(started_at=clock.now(), load_average=0.0, sizes=sizes)

    outcome.results = measure(client, pages(client, outcome), rounds=1, warmup=0)

    assert (sizes.subscriptions, sizes.payments) == (60, 400)
    assert Payment.objects.filter(status=PaymentStatus.FAILED).exists()
    assert sizes.refunds == Payment.objects.filter(refunded_amount__gt=0).count()
    assert outcome.missing == []
    assert all(result.status_code == 200 for result in outcome.results)
    assert outcome.results[0].page.name == BASELINE
    assert "dashboard" in results_table(outcome)
    assert dashboard_figures(now=clock.now()).mrr
