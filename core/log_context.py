"""What the current request or task is about, for every log line and error report written meanwhile.

The fields live in a context variable: a request (config/middleware.py) or a Celery task
(config/celery.py) starts with its `request_id`, and the code that renews a subscription or sends
a refund adds the subscription, the payment and the idempotency key it works on. The logging
filter (config/logging.py) and Sentry (config/sentry.py) read them, so nothing has to pass a
logger extra around, and support can follow one viewer's renewal across web, worker and provider
calls by one id.

    with log_context(subscription_id=subscription.pk):
        ...                                    # every line here names the subscription

    @log_context()                             # a scope for the whole function, whose
    def renewal_run(*, subscription_id): ...   # body adds fields as it learns them:
        log_context_add(payment_id=payment.pk)
"""

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

# The fields log lines may carry, in the order they are shown.
FIELDS = ("request_id", "subscription_id", "payment_id", "idempotency_key")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "billing_log_context", default=_EMPTY
)

Token = contextvars.Token


def _merged(fields: Mapping[str, object]) -> Mapping[str, str]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown log context fields: {', '.join(sorted(unknown))}")
    known = {name: str(value) for name, value in fields.items() if value is not None}
    return MappingProxyType({**_fields.get(), **known})


def log_context_fields() -> dict[str, str]:
    """Return the fields known now (none outside a request or task)."""
    return dict(_fields.get())


def log_context_get(name: str) -> str | None:
    """Return one field known now, or None."""
    return _fields.get().get(name)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add fields (None values skipped) for the block, and forget whatever was added in it on exit.

    Works as a decorator too: `@log_context()` gives a function a scope of its own for
    `log_context_add`.
    """
    token = _fields.set(_merged(fields))
    try:
        yield
    finally:
        _fields.reset(token)


def log_context_add(**fields: object) -> None:
    """Add fields until the innermost enclosing `log_context` (or request, or task) ends."""
    _fields.set(_merged(fields))


def log_context_start(**fields: object) -> Token[Mapping[str, str]]:
    """Start a context with these fields only (a request, a task); end it with `log_context_end`.

    For lifecycles a `with` block cannot span, such as Celery's prerun and postrun signals.
    """
    previous = _fields.set(_EMPTY)
    _fields.set(_merged(fields))
    return previous


def log_context_end(token: Token[Mapping[str, str]] | None = None) -> None:
    """End a context begun by `log_context_start`: back to what was there before, else to nothing."""
    if token is not None:
        try:
            _fields.reset(token)
            return
        except (ValueError, RuntimeError):  # another context's token, or one already used
            pass
    _fields.set(_EMPTY)
