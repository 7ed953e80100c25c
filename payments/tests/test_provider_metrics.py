"""Every request to a provider is counted by how it ended, and the rate limit's waits by provider.

The counters are process-wide, so each test compares them before and after.
"""

from collections.abc import Callable

import pytest
import requests
from prometheus_client import REGISTRY

from payments.gateways.base import CustomerRequest
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    PermanentGatewayError,
    RateLimited,
    TemporaryGatewayError,
)
from payments.gateways.ratelimit import LocalRateLimiter
from payments.gateways.retry import RetryPolicy
from payments.gateways.stripe import StripeGateway

CALLS = "billing_provider_calls_total"
DURATION_SUM = "billing_provider_call_duration_seconds_sum"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counted(**labels: str) -> Callable[[], float]:
    """Return a reader of one provider-call counter, for before/after comparisons."""
    return lambda: metric(CALLS, **labels)


def raising(exc: Exception) -> Callable[[], None]:
    def call() -> None:
        raise exc

    return call


def timed_out() -> TemporaryGatewayError:
    """Return the error a provider package raises for a read time-out, raised from it as the SDK does."""
    try:
        try:
            raise requests.exceptions.ReadTimeout("read timed out")
        except requests.exceptions.ReadTimeout as timeout:
            raise TemporaryGatewayError("network error", code="api_connection_error") from timeout
    except TemporaryGatewayError as error:
        return error


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (CardDeclined("declined", decline_code="insufficient_funds"), "declined"),
        (AuthenticationRequired("3-D Secure"), "authentication_required"),
        (RateLimited("slow down", code="rate_limit"), "rate_limited"),
        (timed_out(), "timeout"),
        (TemporaryGatewayError("502", code="api_error"), "temporary_error"),
        (PermanentGatewayError("no such customer", code="resource_missing"), "error"),
        (ValueError("an answer we could not read"), "error"),
    ],
)
def test_a_failed_request_is_counted_by_how_it_failed(error, outcome):
    policy = RetryPolicy(max_retries=0, provider="acme")
    before = metric(CALLS, provider="acme", operation="charge_off_session", outcome=outcome)

    with pytest.raises(type(error)):
        policy.run(raising(error), operation="charge_off_session")

    assert metric(CALLS, provider="acme", operation="charge_off_session", outcome=outcome) == before + 1


def test_each_retry_is_a_request_of_its_own():
    attempts = iter([TemporaryGatewayError("503", code="api_error"), None])

    def flaky() -> str:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return "cus_1"

    failed, ok = (
        counted(provider="acme", operation="create_customer", outcome="temporary_error"),
        counted(provider="acme", operation="create_customer", outcome="ok"),
    )
    before = (failed(), ok())
    policy = RetryPolicy(max_retries=1, sleep=lambda seconds: None, provider="acme")

    assert policy.run(flaky, operation="create_customer") == "cus_1"
    assert (failed(), ok()) == (before[0] + 1, before[1] + 1)


def test_the_wait_for_the_rate_limit_is_not_the_providers_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("payments.gateways.retry.time.perf_counter", lambda: now[0])

    def wait_turn() -> None:
        now[0] += 5.0  # the limiter makes the call wait five seconds

    def call() -> str:
        now[0] += 0.25  # the provider answers in a quarter of a second
        return "ok"

    before = metric(DURATION_SUM, provider="acme", operation="retrieve_refund")
    RetryPolicy(provider="acme").run(call, operation="retrieve_refund", wait_turn=wait_turn)

    assert metric(DURATION_SUM, provider="acme", operation="retrieve_refund") == pytest.approx(before + 0.25)


def test_a_refused_turn_is_no_request_to_the_provider():
    calls = []
    refusals = iter([RateLimited("no slot", code="outgoing_rate_limit")])

    def wait_turn() -> None:
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal

    sent = counted(provider="acme", operation="list_events", outcome="rate_limited")
    before = sent()
    policy = RetryPolicy(max_retries=1, sleep=lambda seconds: None, provider="acme")
    policy.run(lambda: calls.append("sent"), operation="list_events", wait_turn=wait_turn)

    assert calls == ["sent"]
    assert sent() == before


# --- through the Stripe SDK, against the sandbox ------------------------------------------------


def gateway(settings, **options) -> StripeGateway:
    return StripeGateway(
        "sk_test_metrics",
        "whsec_unused",
        api_base=settings.STRIPE_API_BASE,
        retry_base_delay=0.001,
        **options,
    )


def customer_request(key: str) -> CustomerRequest:
    return CustomerRequest(account_ref="acct-metrics", email="", idempotency_key=key)


def test_stripes_500_then_answer_are_two_requests(stripe_sandbox, settings):
    stripe_sandbox.post("/faults", {"mode": "error", "path": "/v1/customers", "count": 1})
    failed = counted(provider="stripe", operation="create_customer", outcome="temporary_error")
    ok = counted(provider="stripe", operation="create_customer", outcome="ok")
    before = (failed(), ok())

    gateway(settings, max_retries=1).create_customer(customer_request("customer:metrics:1"))

    assert (failed(), ok()) == (before[0] + 1, before[1] + 1)


def test_a_stripe_time_out_is_counted_as_a_timeout(stripe_sandbox, settings):
    stripe_sandbox.post("/faults", {"mode": "timeout", "path": "/v1/customers", "count": 1})
    timeouts = counted(provider="stripe", operation="create_customer", outcome="timeout")
    before = timeouts()

    with pytest.raises(TemporaryGatewayError):
        gateway(settings, max_retries=0, timeout=0.3).create_customer(customer_request("customer:metrics:2"))

    assert timeouts() == before + 1


# --- the outgoing rate limit ---------------------------------------------------------------------


def test_waits_and_refusals_of_the_rate_limit_are_counted_by_provider():
    now, slept = [50.0], []
    limiter = LocalRateLimiter(
        rate=1, max_wait=1.5, name="stripe:0123abcd", clock=lambda: now[0], sleep=slept.append
    )
    before = [
        metric(name, provider="stripe")
        for name in (
            "billing_ratelimit_waits_total",
            "billing_ratelimit_wait_seconds_total",
            "billing_ratelimit_refusals_total",
        )
    ]

    limiter.acquire()  # free
    limiter.acquire()  # one second later
    with pytest.raises(RateLimited):
        limiter.acquire()  # two seconds off: more than it may wait

    after = [
        metric(name, provider="stripe")
        for name in (
            "billing_ratelimit_waits_total",
            "billing_ratelimit_wait_seconds_total",
            "billing_ratelimit_refusals_total",
        )
    ]
    assert slept == [1.0]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, pytest.approx(1.0), 1]
