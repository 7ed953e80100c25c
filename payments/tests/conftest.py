"""Fixtures shared with the subscription engine's tests (billing/tests/conftest.py)."""

from billing.tests.conftest import monthly_tariff, paid_subscription  # noqa: F401 (fixtures used here)
from payments.tests.yookassa_wiring import yookassa, yookassa_process  # noqa: F401 (fixtures used here)
