"""The Stripe gateway: the billing service's only caller of the Stripe SDK.

Everything is passed per instance (API key, API version, base address, timeout), nothing is
set on the `stripe` module and no Django setting is read here, so two gateways (real Stripe
and the offline sandbox, say) can live in one process. Stripe objects never leave this module:
they are turned into the plain dataclasses of `payments.gateways.base` on the way out.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import requests
import stripe

from payments.gateways.base import (
    CardInfo,
    ChargeInfo,
    CheckoutRequest,
    CheckoutSession,
    CreatedRange,
    CustomerRequest,
    EventFact,
    EventPage,
    EventQuery,
    GatewayEvent,
    OffSessionCharge,
    PaymentMethodSetup,
    ProviderBalance,
    ProviderPayment,
    RefundInfo,
    RefundRequest,
    SettlementLine,
)
from payments.gateways.captured_at_once import CapturedAtOnce
from payments.gateways.errors import (
    AuthenticationRequired,
    CardDeclined,
    DeclineReason,
    GatewayError,
    InvalidWebhookSignature,
    PermanentGatewayError,
)
from payments.gateways.ratelimit import RateLimiter
from payments.gateways.retry import RetryPolicy
from payments.gateways.stripe_events import event_fact_from_stripe
from payments.gateways.stripe_mapping import (
    ACCOUNT_REF_METADATA_KEY,
    STRIPE_REFUND_REASONS,
    UNUSABLE_PAYMENT_METHOD_CODES,
    balance_from_stripe,
    balance_transaction_from_stripe,
    card_from_stripe,
    charge_from_stripe,
    checkout_session_from_stripe,
    decline_kind,
    decline_reason,
    event_from_stripe,
    gateway_error_from_stripe,
    payment_intent_from_stripe,
    refund_from_stripe,
    setup_intent_from_stripe,
    unexpected_response,
)
from payments.gateways.stripe_requests import build_checkout_params, build_off_session_params

if TYPE_CHECKING:
    from stripe import RequestOptions
    from stripe.params import (
        CustomerCreateParams,
        EventListParams,
        RefundCreateParams,
    )

T = TypeVar("T")

# Stripe's largest page: the fewest requests for a day of charges.
LIST_PAGE_SIZE = 100

# Stripe's documented webhook tolerance: a signed body older than this is refused as a replay.
WEBHOOK_TOLERANCE_SECONDS = 300


class StripeGateway(CapturedAtOnce):
    """Talk to Stripe, or to a Stripe-compatible server at `api_base`, through the official SDK.

    Retries: the SDK's own retries are switched off and this class retries temporary failures
    itself (`max_retries` times, exponential backoff from `retry_base_delay`), always resending
    the caller's idempotency key. One retry budget instead of two stacked ones, and delays the
    tests can shrink (the SDK's have a fixed floor of half a second).

    Rate limit: with a `limiter`, every request sent (each retry too) first takes a token from
    it, so all processes sharing the limiter stay under the rate Stripe allows.
    """

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        api_version: str | None = None,
        timeout: float = 10,
        max_retries: int = 2,
        *,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        webhook_tolerance: int = WEBHOOK_TOLERANCE_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RateLimiter | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if webhook_tolerance <= 0:
            # The SDK treats a tolerance of 0 as "accept any age", which would allow replays.
            raise ValueError("webhook_tolerance must be positive")
        self._webhook_secret = webhook_secret
        self._webhook_tolerance = webhook_tolerance
        self._limiter = limiter
        self._retry = RetryPolicy(
            max_retries=max_retries,
            base_delay=retry_base_delay,
            max_delay=retry_max_delay,
            sleep=sleep,
            provider="stripe",
        )
        self._client = stripe.StripeClient(
            api_key,
            # None keeps the API version the installed SDK was generated for.
            stripe_version=api_version or None,
            # The SDK joins base and path ("/v1/..."), so a trailing slash would double up.
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=0,
            http_client=_SessionPerThread(timeout=timeout, api_base=api_base or stripe.DEFAULT_API_BASE),
        )

    # --- customers ------------------------------------------------------------------------

    def create_customer(self, request: CustomerRequest) -> str:
        """Create the Stripe customer of a billing account and return its id."""
        params: CustomerCreateParams = {"metadata": {ACCOUNT_REF_METADATA_KEY: request.account_ref}}
        if request.email:
            params["email"] = request.email
        customer = self._call(
            "create_customer",
            lambda: self._client.v1.customers.create(params=params, options=_keyed(request.idempotency_key)),
        )
        return customer.id

    # --- checkout -------------------------------------------------------------------------

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a Stripe Checkout page for a locked price ("payment") or to save a card ("setup")."""
        params = build_checkout_params(request)
        session = self._call(
            "create_checkout_session",
            lambda: self._client.v1.checkout.sessions.create(
                params=params, options=_keyed(request.idempotency_key)
            ),
        )
        return checkout_session_from_stripe(session.to_dict())

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """Return the Checkout Session as Stripe sees it now."""
        session = self._call(
            "retrieve_checkout_session", lambda: self._client.v1.checkout.sessions.retrieve(session_id)
        )
        return checkout_session_from_stripe(session.to_dict())

    def expire_checkout_session(self, session_id: str, idempotency_key: str) -> CheckoutSession:
        """Expire an open Checkout Session so that it can no longer be paid."""
        options = _keyed(idempotency_key)
        session = self._call(
            "expire_checkout_session",
            lambda: self._client.v1.checkout.sessions.expire(session_id, options=options),
        )
        return checkout_session_from_stripe(session.to_dict())

    # --- intents and payment methods ------------------------------------------------------

    def retrieve_payment(self, payment_intent_id: str) -> ProviderPayment:
        """Return a PaymentIntent with its payment method expanded, for the card details."""
        intent = self._call(
            "retrieve_payment",
            lambda: self._client.v1.payment_intents.retrieve(
                payment_intent_id, params={"expand": ["payment_method"]}
            ),
        )
        return payment_intent_from_stripe(intent.to_dict())

    def retrieve_payment_method_setup(self, setup_intent_id: str) -> PaymentMethodSetup:
        """Return a SetupIntent, to learn which payment method a setup checkout saved."""
        intent = self._call(
            "retrieve_payment_method_setup", lambda: self._client.v1.setup_intents.retrieve(setup_intent_id)
        )
        return setup_intent_from_stripe(intent.to_dict())

    def retrieve_payment_method(self, payment_method_id: str) -> CardInfo:
        """Return the displayable details of a saved card; refuse other kinds of method."""
        method = self._call(
            "retrieve_payment_method",
            lambda: self._client.v1.payment_methods.retrieve(payment_method_id),
        )
        card = card_from_stripe(method.to_dict())
        if card is None:
            raise PermanentGatewayError(
                f"payment method {payment_method_id} is not a card", code="payment_method_not_card"
            )
        return card

    def charge_off_session(self, charge: OffSessionCharge) -> ProviderPayment:
        """Create and confirm an off-session PaymentIntent on a saved payment method.

        Raise CardDeclined or AuthenticationRequired when the charge did not go through, also
        when the server answers 200 with a failed intent instead of Stripe's 402.
        """
        params = build_off_session_params(charge)
        try:
            # Read as plain JSON: every renewal makes this call, and the SDK's PaymentIntent
            # object would only be turned back into a dict (docs/benchmarks.md, renewals).
            intent = self._call(
                "charge_off_session",
                lambda: self._post_plain("/v1/payment_intents", params, charge.idempotency_key),
            )
        except PermanentGatewayError as exc:
            if exc.code not in UNUSABLE_PAYMENT_METHOD_CODES:
                raise
            # The saved card cannot be charged at all (e.g. it was removed at Stripe): a hard
            # decline, not a mistake of ours.
            raise CardDeclined(
                exc.message, decline_code="do_not_try_again", code=exc.code, kind="hard"
            ) from exc
        info = payment_intent_from_stripe(intent)
        if info.status == "requires_action":
            raise AuthenticationRequired(
                "the payment needs the customer to authenticate", payment_intent_id=info.id
            )
        if info.status == "requires_payment_method":
            raise CardDeclined(
                info.failure_message or "the payment was declined",
                decline_code=info.decline_code,
                payment_intent_id=info.id,
                code=info.failure_code or "card_declined",
                kind=decline_kind(info.decline_code or info.failure_code),
            )
        return info

    # --- refunds --------------------------------------------------------------------------

    def create_refund(self, request: RefundRequest) -> RefundInfo:
        """Refund part (`amount`) or the rest (`amount=None`) of a PaymentIntent."""
        params: RefundCreateParams = {
            "payment_intent": request.payment_intent_id,
            "metadata": dict(request.metadata),
        }
        if request.amount is not None:
            params["amount"] = request.amount
        if request.reason in STRIPE_REFUND_REASONS:
            params["reason"] = STRIPE_REFUND_REASONS[request.reason]
        refund = self._call(
            "create_refund",
            lambda: self._client.v1.refunds.create(params=params, options=_keyed(request.idempotency_key)),
        )
        return refund_from_stripe(refund.to_dict())

    def retrieve_refund(self, refund_id: str) -> RefundInfo:
        """Return a refund as Stripe sees it now."""
        refund = self._call("retrieve_refund", lambda: self._client.v1.refunds.retrieve(refund_id))
        return refund_from_stripe(refund.to_dict())

    # --- events ---------------------------------------------------------------------------

    def list_events(self, query: EventQuery) -> EventPage:
        """Return one page of Stripe events, newest first as Stripe lists them."""
        params: EventListParams = {"limit": query.limit}
        if query.created_after is not None:
            # Stripe's `created` has whole seconds, so "after t" is "after floor(t)".
            params["created"] = {"gt": math.floor(query.created_after.timestamp())}
        if query.starting_after:
            params["starting_after"] = query.starting_after
        page = self._call("list_events", lambda: self._client.v1.events.list(params=params))
        return EventPage(
            events=[event_from_stripe(event.to_dict()) for event in page.data],
            has_more=bool(page.has_more),
        )

    # --- ledgers (the daily reconciliation report) -----------------------------------------

    def list_charges(self, created: CreatedRange) -> list[ChargeInfo]:
        """Return every charge created in the range, newest first, reading all pages."""
        return [
            charge_from_stripe(item)
            for item in self._list_all(
                "list_charges",
                lambda params: self._client.v1.charges.list(params=params),  # type: ignore[arg-type]
                created,
            )
        ]

    def list_refunds(self, created: CreatedRange) -> list[RefundInfo]:
        """Return every refund created in the range, newest first, reading all pages."""
        return [
            refund_from_stripe(item)
            for item in self._list_all(
                "list_refunds",
                lambda params: self._client.v1.refunds.list(params=params),  # type: ignore[arg-type]
                created,
            )
        ]

    def list_settlement_lines(self, created: CreatedRange) -> list[SettlementLine]:
        """Return every balance transaction created in the range, newest first, reading all pages."""
        return [
            balance_transaction_from_stripe(item)
            for item in self._list_all(
                "list_settlement_lines",
                lambda params: self._client.v1.balance_transactions.list(params=params),  # type: ignore[arg-type]
                created,
            )
        ]

    def retrieve_balance(self) -> list[ProviderBalance]:
        """Return Stripe's balance now, per currency: available and pending over every source type.

        A read: it sends no idempotency key, and a temporary failure is simply asked again.
        """
        balance = self._call("retrieve_balance", lambda: self._client.v1.balance.retrieve())
        return balance_from_stripe(balance.to_dict())

    def _list_all(
        self, operation: str, list_page: Callable[[dict[str, Any]], Any], created: CreatedRange
    ) -> list[Mapping[str, Any]]:
        """Read a Stripe list filtered by `created` to its end, one `_call` (and retry) per page.

        Each page goes through the rate limit on its own, so a long day of charges never takes
        more than its share of the account's rate; `starting_after` is the last id read, which
        Stripe keeps stable while new objects arrive at the head of the list.
        """
        params: dict[str, Any] = {
            # Stripe's `created` has whole seconds: [floor(start), floor(end)) covers the range.
            "created": {
                "gte": math.floor(created.start.timestamp()),
                "lt": math.floor(created.end.timestamp()),
            },
            "limit": LIST_PAGE_SIZE,
        }
        items: list[Mapping[str, Any]] = []
        while True:
            page = self._call(operation, functools.partial(list_page, dict(params)))
            data = [item.to_dict() for item in page.data]
            items.extend(data)
            if not page.has_more or not data:
                return items
            params["starting_after"] = data[-1]["id"]

    webhook_signature_header = "Stripe-Signature"

    def decline_reason(self, code: str | None) -> DeclineReason:
        """Return what a Stripe decline code means for the viewer (`stripe_mapping`)."""
        return decline_reason(code)

    def event_fact(self, event: GatewayEvent) -> EventFact | None:
        """Return what a Stripe event tells us (`stripe_events`)."""
        return event_fact_from_stripe(event)

    def parse_webhook(self, payload: bytes, signature_header: str) -> GatewayEvent:
        """Verify the Stripe-Signature header on the raw body and return the event it carries."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, self._webhook_secret, self._webhook_tolerance
            )
        except stripe.SignatureVerificationError as exc:
            raise gateway_error_from_stripe(exc) from exc
        except (UnicodeDecodeError, ValueError) as exc:
            # The SDK decodes the body before hashing it; a body that is not UTF-8 is not ours.
            raise InvalidWebhookSignature(
                f"unreadable webhook body: {exc}", code="invalid_signature"
            ) from exc
        try:
            data = _json_object(payload)
            return event_from_stripe(data)
        except (ValueError, GatewayError) as exc:
            # Correctly signed yet not an event: refuse it the same way, the sender is at fault.
            raise InvalidWebhookSignature(
                f"signed webhook body is not a Stripe event: {exc}", code="invalid_payload"
            ) from exc

    # --- plumbing -------------------------------------------------------------------------

    def _post_plain(self, path: str, params: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        """POST to the API and return the answer as the JSON object it is, not as an SDK object.

        The SDK's own request path: the same encoding, headers and error mapping.
        """
        response = self._client.raw_request("post", path, **params, **_keyed(idempotency_key))
        if not isinstance(response.data, dict):
            raise unexpected_response(f"POST {path}")
        return response.data

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """Run one SDK call with our error mapping, rate limit and retries."""

        def attempt() -> T:
            try:
                return call()
            except stripe.StripeError as exc:
                raise gateway_error_from_stripe(exc) from exc

        # Each attempt (each retry too) first takes its turn under the rate limit.
        wait_turn = self._limiter.acquire if self._limiter is not None else None
        return self._retry.run(attempt, operation=operation, wait_turn=wait_turn)


class _SessionPerThread(stripe.RequestsClient):
    """The SDK's requests client, whose per-thread sessions do not read the environment.

    requests otherwise walks every environment variable for proxy settings, and reads ~/.netrc,
    on each request: with the SDK objects `_post_plain` skips, about 1 ms of CPU a charge. A
    proxy the environment names for the API's address is read once, here, and used for every
    request. The SDK keeps each thread's session in `_thread_local.session`; should that change,
    the sessions fall back to the SDK's own and the environment-read-once test fails.
    """

    def __init__(self, *, timeout: float, api_base: str) -> None:
        proxy = requests.utils.get_environ_proxies(api_base).get(urlsplit(api_base).scheme)
        super().__init__(timeout=timeout, proxy=proxy)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """Send one request on this thread's session, made here on its first request."""
        if getattr(self._thread_local, "session", None) is None:
            session = requests.Session()
            session.trust_env = False
            self._thread_local.session = session
        return super().request(*args, **kwargs)


def _keyed(idempotency_key: str) -> RequestOptions:
    # An empty key would let the SDK invent a random one, silently losing idempotency.
    if not idempotency_key:
        raise ValueError("an idempotency key is required for this call")
    return {"idempotency_key": idempotency_key}


def _json_object(payload: bytes) -> dict[str, Any]:
    """Parse a webhook body that must be a JSON object; raise ValueError for anything else."""
    try:
        data = json.loads(payload)
    except RecursionError as exc:
        # A body nested hundreds of levels deep: no Stripe event is, and `json` would recurse.
        raise ValueError("nested too deeply") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
