"""The log context holds what the current request or task is about, and forgets it when that ends."""

import contextvars
import uuid

import pytest

from core.log_context import (
    log_context,
    log_context_add,
    log_context_end,
    log_context_fields,
    log_context_get,
    log_context_start,
)


def test_a_block_adds_its_fields_and_forgets_them_on_exit():
    payment_id = uuid.uuid4()
    with log_context(request_id="req-1"):
        with log_context(payment_id=payment_id, idempotency_key=None):
            assert log_context_fields() == {"request_id": "req-1", "payment_id": str(payment_id)}
        assert log_context_fields() == {"request_id": "req-1"}
    assert log_context_fields() == {}


def test_a_decorated_function_keeps_what_it_added_to_itself():
    @log_context()
    def renew(subscription_id):
        log_context_add(subscription_id=subscription_id)
        log_context_add(payment_id="pay-1")
        return log_context_fields()

    with log_context(request_id="req-1"):
        inside = renew("sub-1")
        assert log_context_fields() == {"request_id": "req-1"}
    assert inside == {"request_id": "req-1", "subscription_id": "sub-1", "payment_id": "pay-1"}


def test_a_decorated_function_forgets_its_fields_when_it_raises():
    @log_context()
    def fail():
        log_context_add(subscription_id="sub-1")
        raise RuntimeError("declined")

    with pytest.raises(RuntimeError):
        fail()
    assert log_context_get("subscription_id") is None


def test_a_started_context_replaces_the_fields_until_it_ends():
    with log_context(subscription_id="sub-of-the-caller"):
        token = log_context_start(request_id="task-1")
        assert log_context_fields() == {"request_id": "task-1"}
        log_context_end(token)
        assert log_context_fields() == {"subscription_id": "sub-of-the-caller"}


def test_ending_without_a_usable_token_leaves_nothing():
    token = contextvars.Context().run(log_context_start, request_id="elsewhere")
    log_context_start(request_id="req-1")
    log_context_end(token)  # another context's token
    assert log_context_fields() == {}


def test_unknown_fields_are_refused():
    with pytest.raises(TypeError, match="card"), log_context(card="4242"):
        pass
