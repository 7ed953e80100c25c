"""The in-memory provider's books: the state and the moves its operations share.

Ids that count up, the call log, idempotency keys, events, payment intents, charges with their
ledger entries, and the expiry of checkout pages, decided as the sandbox decides them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from payments.gateways.base import ChargeInfo, GatewayEvent, ProviderPayment, SettlementLine
from payments.gateways.errors import AuthenticationRequired, CardDeclined, PermanentGatewayError
from payments.gateways.memory.records import (
    MemoryState,
    _Card,
    _charge_json,
    _Intent,
    _intent_json,
    _invalid,
    _missing,
    _Remembered,
    _Session,
    _session_json,
)

# The fake answers with the test cards and codes of Stripe's sandbox, so it classifies them as Stripe does.
from payments.gateways.stripe_mapping import SETTLEMENT_KINDS
from payments.sandbox import cards
from payments.sandbox.objects import processing_fee


class MemoryBooks:
    """The state of one in-memory provider and the moves its gateway and its pages share.

    `now` gives the provider's clock for `created` times; `wall_now` the real time a page's life
    is measured on (see `MemoryGateway`).
    """

    def __init__(self, *, now: Callable[[], datetime], wall_now: Callable[[], datetime]) -> None:
        self.now = now
        self.wall_now = wall_now
        self.state = MemoryState()

    def new_id(self, prefix: str) -> str:
        """Return the next id with Stripe's prefix for the kind of object."""
        return f"{prefix}_mem{next(self.state.counter):08d}"

    def log(self, operation: str, key: str | None = None) -> None:
        """Note a gateway call, with its idempotency key if it writes."""
        self.state.calls.append((operation, key))

    def idempotent(self, operation: str, key: str, request: Any, create: Callable[[], Any]) -> Any:
        """Run `create` once per key, as Stripe's idempotency layer (and the sandbox's) does.

        A success or a decline is remembered and answered again to the same request; the same
        key with another request is refused; a request refused as invalid is not remembered.
        """
        self.log(operation, key)
        if not key:
            raise ValueError("an idempotency key is required for this call")
        remembered = self.state.keys.get(key)
        if remembered is not None:
            if remembered.request != (operation, request):
                raise PermanentGatewayError(
                    "Keys for idempotent requests can only be used with the same parameters they were "
                    f"first used with. Try using a key other than '{key}' if you meant to execute a "
                    "different request.",
                    code="idempotency_error",
                    http_status=400,
                )
            if remembered.error is not None:
                raise remembered.error
            return remembered.result
        try:
            result = create()
        except (CardDeclined, AuthenticationRequired) as exc:
            self.state.keys[key] = _Remembered(request=(operation, request), error=exc)
            raise
        self.state.keys[key] = _Remembered(request=(operation, request), result=result)
        return result

    def record(self, type_: str, data: dict[str, Any]) -> None:
        """Record an event as the provider would send it, stamped with the provider's clock."""
        self.state.events.append(
            GatewayEvent(
                id=self.new_id("evt"),
                type=type_,
                created=self.now().replace(microsecond=0),
                object_id=data.get("id"),
                object=data,
            )
        )

    def live_session(self, session_id: str) -> _Session:
        """Return a session, expiring it first if its time is up."""
        session = self.state.sessions.get(session_id)
        if session is None:
            raise _missing("checkout.session", session_id)
        if session.status == "open" and session.expires_at <= self.wall_now():
            self.expire(session)
        return session

    def expire(self, session: _Session) -> None:
        """Close an open session and cancel the intent it started, as the sandbox does."""
        intent = self.state.intents.get(session.payment_intent_id or "")
        setup = self.state.setup_intents.get(session.setup_intent_id or "")
        for started in (intent, setup):
            if started is not None and started.status not in ("succeeded", "canceled"):
                started.status = "canceled"
                event = "payment_intent" if isinstance(started, _Intent) else "setup_intent"
                self.record(f"{event}.canceled", {"id": started.id, "status": "canceled"})
        session.status = "expired"
        self.record("checkout.session.expired", _session_json(session))

    def new_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str | None,
        metadata: dict[str, str],
        description: str,
        save_card: bool,
    ) -> _Intent:
        intent = _Intent(
            id=self.new_id("pi"),
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            metadata=dict(metadata),
            description=description,
            save_card=save_card,
            created=self.now(),
        )
        self.state.intents[intent.id] = intent
        self.record("payment_intent.created", _intent_json(intent))
        return intent

    def succeed(self, intent: _Intent, card: _Card) -> None:
        """Take the money: a succeeded charge, its ledger entry (with the sandbox's fee), a paid intent."""
        charge_id = self.new_id("ch")
        txn = self.ledger(
            amount=intent.amount,
            fee=processing_fee(intent.amount),
            currency=intent.currency,
            source=charge_id,
            kind="charge",
        )
        charge = self.charge(intent, charge_id, succeeded=True, balance_transaction_id=txn.id)
        intent.status, intent.payment_method_id = "succeeded", card.id
        intent.latest_charge_id, intent.error = charge.id, None
        self.record("charge.succeeded", _charge_json(charge))
        self.record("payment_intent.succeeded", _intent_json(intent))

    def decline(self, intent: _Intent, card: _Card, outcome: str) -> tuple[str, str]:
        """Record a declined attempt: a failed charge and an intent that needs another card."""
        code, message = cards.DECLINES[outcome]
        charge = self.charge(intent, self.new_id("ch"), succeeded=False, balance_transaction_id=None)
        intent.status, intent.payment_method_id = "requires_payment_method", None
        intent.latest_charge_id, intent.error = charge.id, (code, outcome, message)
        self.record("charge.failed", _charge_json(charge))
        self.record("payment_intent.payment_failed", _intent_json(intent))
        return code, message

    def charge(
        self, intent: _Intent, charge_id: str, *, succeeded: bool, balance_transaction_id: str | None
    ) -> ChargeInfo:
        """Record a charge of an intent's amount, succeeded or failed."""
        charge = ChargeInfo(
            id=charge_id,
            status="succeeded" if succeeded else "failed",
            amount=intent.amount,
            amount_refunded=0,
            currency=intent.currency,
            captured=succeeded,
            payment_intent_id=intent.id,
            balance_transaction_id=balance_transaction_id,
            created=self.now().replace(microsecond=0),
        )
        self.state.charges[charge.id] = charge
        return charge

    def ledger(self, *, amount: int, fee: int, currency: str, source: str, kind: str) -> SettlementLine:
        """Book a ledger entry (a settlement line) for money moved."""
        txn = SettlementLine(
            id=self.new_id("txn"),
            type=kind,
            kind=SETTLEMENT_KINDS.get(kind, "other"),
            amount=amount,
            fee=fee,
            net=amount - fee,
            currency=currency,
            source_id=source,
            exchange_rate=None,
            created=self.now().replace(microsecond=0),
        )
        self.state.balance_transactions[txn.id] = txn
        return txn

    def charge_to_refund(self, payment_intent_id: str) -> ChargeInfo:
        """Return the succeeded charge of a payment, or refuse as the provider does."""
        intent = self.state.intents.get(payment_intent_id)
        if intent is None:
            raise _missing("payment_intent", payment_intent_id)
        charge = self.state.charges.get(intent.latest_charge_id or "")
        if intent.status != "succeeded" or charge is None or charge.status != "succeeded":
            raise _invalid(
                f"This PaymentIntent ({payment_intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        return charge

    def intent_info(self, intent: _Intent) -> ProviderPayment:
        """Return a payment intent as the gateway interface shows it, with its card."""
        card = self.state.cards.get(intent.payment_method_id or "")
        code, decline_code, message = intent.error or (None, None, None)
        return ProviderPayment(
            id=intent.id,
            status=intent.status,
            amount=intent.amount,
            currency=intent.currency,
            customer_id=intent.customer_id,
            payment_method_id=intent.payment_method_id,
            latest_charge_id=intent.latest_charge_id,
            failure_code=code,
            decline_code=decline_code,
            failure_message=message,
            metadata=dict(intent.metadata),
            card=card.info() if card is not None else None,
        )
