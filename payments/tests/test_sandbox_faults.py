"""Injected faults, as the SDK (and so the gateway) experiences them."""

import pytest
import requests
import stripe

from payments.sandbox import start_sandbox
from payments.tests.sandbox_helpers import Control, make_client, payment_session_params


@pytest.fixture
def sandbox():
    with start_sandbox(timeout_hold_seconds=1.0) as handle:
        yield handle


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


@pytest.fixture
def control(sandbox):
    return Control(sandbox)


def create_customer(client, **options):
    return client.v1.customers.create(params={"email": "viewer@cinema.test"}, options=options)


def test_injected_500_reaches_the_sdk_then_clears(client, control):
    control.post("/faults", {"mode": "error", "path": "/v1/customers", "method": "POST", "count": 1})

    with pytest.raises(stripe.APIError) as caught:
        create_customer(client)
    recovered = create_customer(client)

    assert caught.value.http_status == 500
    assert recovered.id.startswith("cus_")
    assert [r["status"] for r in control.requests(path="/v1/customers")] == [500, 200]
    assert control.requests(path="/v1/customers")[0]["fault"] == "error"
    assert len(control.objects("customer")) == 1
    assert control.get("/faults")["data"] == []


def test_sdk_retry_after_a_500_reuses_its_key_and_creates_once(sandbox, control):
    retrying = make_client(sandbox, retries=1)
    control.post("/faults", {"mode": "error", "path": "/v1/checkout/sessions", "count": 1})

    customer = create_customer(retrying)
    session = retrying.v1.checkout.sessions.create(params=payment_session_params(customer.id))

    arrived = control.requests(method="POST", path="/v1/checkout/sessions")
    assert [r["status"] for r in arrived] == [500, 200]
    assert arrived[0]["idempotency_key"] == arrived[1]["idempotency_key"]
    assert [s["id"] for s in control.objects("checkout.session")] == [session.id]


def test_injected_429_is_a_rate_limit_error(client, control):
    control.post("/faults", {"mode": "rate_limit", "path": "/v1/customers", "count": 2})

    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as caught:
            create_customer(client)
    create_customer(client)

    assert caught.value.http_status == 429
    assert caught.value.json_body["error"]["code"] == "rate_limit"
    assert [r["status"] for r in control.requests(path="/v1/customers")] == [429, 429, 200]


def test_injected_timeout_is_a_connection_error_for_the_sdk(sandbox, control):
    impatient = make_client(sandbox, timeout=0.3)
    control.post("/faults", {"mode": "timeout", "path": "/v1/customers", "count": 1})

    with pytest.raises(stripe.APIConnectionError) as caught:
        create_customer(impatient)

    # The client's own read time-out gave up (the sandbox would drop the connection after 1 s).
    assert isinstance(caught.value.__cause__, requests.exceptions.ReadTimeout)
    assert control.objects("customer") == []
    assert control.requests(path="/v1/customers")[0]["fault"] == "timeout"


def test_timeout_after_the_work_is_done_is_healed_by_the_same_idempotency_key(sandbox, control):
    impatient = make_client(sandbox, timeout=0.3)
    control.post("/faults", {"mode": "timeout", "path": "/v1/customers", "count": 1, "when": "after"})

    with pytest.raises(stripe.APIConnectionError):
        create_customer(impatient, idempotency_key="customer-for-account-42")
    retried = create_customer(impatient, idempotency_key="customer-for-account-42")

    assert [c["id"] for c in control.objects("customer")] == [retried.id]
    assert [r["replayed"] for r in control.requests(path="/v1/customers")] == [False, True]


def test_latency_fault_slows_matching_requests_only(client, control):
    control.post("/faults", {"mode": "latency", "path": "/v1/customers", "method": "POST", "latency_ms": 300})

    customer = create_customer(client)
    client.v1.customers.retrieve(customer.id)

    assert [(r["method"], r["latency_ms"]) for r in control.requests(path="/v1/customers")] == [("POST", 300)]
    assert [r["latency_ms"] for r in control.requests(path=f"/v1/customers/{customer.id}")] == [0]


def test_global_latency_applies_to_every_api_request(client, control):
    control.post("/config", {"latency_ms": 200})

    create_customer(client)
    control.post("/config", {"latency_ms": 0})
    create_customer(client)

    assert [r["latency_ms"] for r in control.requests(path="/v1/customers")] == [200, 0]


def test_fault_lasts_until_cleared_when_no_count_is_given(client, control):
    fault = control.post("/faults", {"mode": "error", "path": "/v1/customers", "status": 503})

    for _ in range(3):
        with pytest.raises(stripe.APIError):
            create_customer(client)
    control.delete(f"/faults/{fault['id']}")

    assert create_customer(client).id.startswith("cus_")


def test_malformed_fault_is_refused(control):
    refused = control.post("/faults", {"mode": "explode"}, expect=400)

    assert "mode" in refused["error"]["message"]


def test_reset_forgets_objects_faults_and_requests(client, control):
    create_customer(client)
    control.post("/faults", {"mode": "error"})

    control.post("/reset")

    assert control.objects("customer") == []
    assert control.get("/faults")["data"] == []
    assert create_customer(client).id.startswith("cus_")
    assert len(control.requests()) == 1
