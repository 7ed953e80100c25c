"""The YooKassa sandbox's objects and operations: payments, refunds, saved methods, keys.

All state lives in memory under one lock, so an Idempotence-Key check and the operation it
guards run as one step: concurrent requests with one key create one object.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from payments.sandbox.yookassa.cards import TEST_CARDS, TestCard, card_type
from payments.sandbox.yookassa.checks import YooKassaError, amount_json, check_receipt, invalid, money

Obj = dict[str, Any]

# A page nobody paid is canceled after an hour; a hold not captured after 7 days (card payments).
PENDING_LIFETIME = 3600.0
HOLD_LIFETIME = 7 * 24 * 3600.0
# The sandbox's fee: income_amount is the amount less 3.5%.
FEE_PERCENT = Decimal("3.5")
_PAYMENT_FIELDS = {
    "amount",
    "description",
    "receipt",
    "recipient",
    "payment_token",
    "payment_method_id",
    "payment_method_data",
    "confirmation",
    "save_payment_method",
    "capture",
    "client_ip",
    "metadata",
    "airline",
    "transfers",
    "deal",
    "merchant_customer_id",
    "payment_order",
    "receiver",
}
_REFUND_FIELDS = {
    "payment_id",
    "amount",
    "description",
    "receipt",
    "sources",
    "deal",
    "metadata",
    "refund_method_data",
}


def iso(ts: float) -> str:
    """Return a unix time as YooKassa writes it."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> float:
    """Return YooKassa's ISO time as a unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class State:
    """Every object of one sandbox, its keys and its clock."""

    def __init__(self, *, shop_id: str, public_url: str, notify: Callable[[str, Obj], None]) -> None:
        self.lock = threading.RLock()
        self.shop_id = shop_id
        self.public_url = public_url
        self.clock_offset = 0.0
        self._notify = notify
        self.payments: dict[str, Obj] = {}
        self.refunds: dict[str, Obj] = {}
        self.methods: dict[
            str, Obj
        ] = {}  # saved method id -> {"card": ..., "test": TestCard, "decline_reason"}
        self.keys: dict[str, tuple[str, int, str]] = {}  # key -> (request fingerprint, status, body)

    def now(self) -> float:
        """Return the sandbox's time (real time plus what the control API advanced)."""
        return time.time() + self.clock_offset

    def reset(self) -> None:
        """Forget every object and key."""
        with self.lock:
            self.payments.clear()
            self.refunds.clear()
            self.methods.clear()
            self.keys.clear()
            self.clock_offset = 0.0

    # --- payments -------------------------------------------------------------------------

    def create_payment(self, params: Obj) -> Obj:
        """Create a payment: a page to confirm, or a charge of a saved method."""
        unknown = set(params) - _PAYMENT_FIELDS
        if unknown:
            raise invalid(f"unknown parameter {sorted(unknown)[0]}", sorted(unknown)[0])
        amount, currency = money(params.get("amount"), "amount")
        if currency == "RUB" and amount < 1:
            raise invalid("the smallest card payment is 1.00 RUB", "amount.value")
        description = params.get("description")
        if description is not None and (not isinstance(description, str) or len(description) > 128):
            raise invalid("description is at most 128 characters", "description")
        metadata = params.get("metadata") or {}
        if not isinstance(metadata, dict) or len(metadata) > 16:
            raise invalid("metadata holds at most 16 keys", "metadata")
        if "receipt" in params:
            check_receipt(params["receipt"], amount, currency)
        capture = params.get("capture", False)
        if not isinstance(capture, bool):
            raise invalid("capture must be a boolean", "capture")
        now = self.now()
        payment: Obj = {
            "id": str(uuid.uuid4()),
            "status": "pending",
            "paid": False,
            "amount": amount_json(amount, currency),
            "created_at": iso(now),
            "metadata": {str(k): str(v) for k, v in metadata.items()},
            "recipient": {"account_id": self.shop_id, "gateway_id": "100500"},
            "refundable": False,
            "refunded_amount": amount_json(Decimal(0), currency),
            "test": True,
        }
        if description:
            payment["description"] = description
        if "receipt" in params:
            payment["receipt_registration"] = "pending"
        internal = {
            "capture": capture,
            "save": bool(params.get("save_payment_method")),
            "receipt": "receipt" in params,
        }
        method_id = params.get("payment_method_id")
        if method_id:
            method = self.methods.get(str(method_id))
            if method is None:
                raise invalid(
                    "payment_method_id is not a saved payment method of this shop", "payment_method_id"
                )
            payment["payment_method"] = copy.deepcopy(method["object"])
            self.payments[payment["id"]] = {"object": payment, "internal": internal}
            self._charge_saved(payment, method, internal, now)
        else:
            confirmation = params.get("confirmation")
            if not isinstance(confirmation, dict) or confirmation.get("type") != "redirect":
                raise invalid("confirmation of type redirect is required", "confirmation")
            return_url = confirmation.get("return_url")
            if not isinstance(return_url, str) or not return_url.startswith(("http://", "https://")):
                raise invalid("confirmation.return_url must be an http(s) URL", "confirmation.return_url")
            payment["confirmation"] = {
                "type": "redirect",
                "confirmation_url": f"{self.public_url}/payments/confirm?orderId={payment['id']}",
                "return_url": return_url,
            }
            self.payments[payment["id"]] = {"object": payment, "internal": internal}
        return copy.deepcopy(payment)

    def _charge_saved(self, payment: Obj, method: Obj, internal: Obj, now: float) -> None:
        test: TestCard = method["test"]
        reason = method.get("decline_reason")
        if reason:
            self._cancel(payment, "payment_network", reason)
        elif test.three_d_secure:
            # The issuer wants 3-D Secure and nobody is there to pass it (no confirmation asked).
            self._cancel(payment, "payment_network", "3d_secure_failed")
        else:
            self._authorize(payment, internal, now)

    def payment(self, payment_id: str) -> Obj:
        """Return a payment as it stands now (a page left unpaid past its hour is canceled first)."""
        record = self.payments.get(payment_id)
        if record is None:
            raise YooKassaError(404, "not_found", "Payment doesn't exist or access denied", "payment_id")
        self._expire(record["object"])
        return copy.deepcopy(record["object"])

    def _expire(self, payment: Obj) -> None:
        created = parse_iso(payment["created_at"])
        if payment["status"] == "pending" and self.now() > created + PENDING_LIFETIME:
            self._cancel(payment, "yoo_money", "expired_on_confirmation")
        elif payment["status"] == "waiting_for_capture" and self.now() > parse_iso(payment["expires_at"]):
            self._cancel(payment, "yoo_money", "expired_on_capture")

    def pay(self, payment_id: str, *, number: str, expiry: tuple[str, str]) -> tuple[str, str | None]:
        """Pay a pending page with a test card: ("succeeded"|"requires_action"|"declined"|"invalid", message)."""
        record = self.payments.get(payment_id)
        if record is None:
            raise YooKassaError(404, "not_found", "Payment doesn't exist", "orderId")
        payment = record["object"]
        self._expire(payment)
        if payment["status"] != "pending" or "confirmation" not in payment:
            return "unavailable", "This payment can no longer be paid."
        test = TEST_CARDS.get(number)
        if test is None:
            return "invalid", "Card number is incorrect."
        payment["payment_method"] = {
            "type": "bank_card",
            "id": payment["id"],
            "saved": False,
            "title": f"Bank card *{number[-4:]}",
            "card": {
                "first6": number[:6],
                "last4": number[-4:],
                "expiry_month": expiry[0],
                "expiry_year": expiry[1],
                "card_type": card_type(number),
                "issuer_country": "RU",
            },
        }
        record["test"] = test
        if test.decline_reason:
            self._cancel(payment, test.party, test.decline_reason)
            return "declined", test.decline_reason
        if test.three_d_secure:
            record["awaiting_3ds"] = True
            return "requires_action", None
        self._authorize(payment, record["internal"], self.now())
        return "succeeded", None

    def authenticate(self, payment_id: str, *, passed: bool) -> str:
        """Finish 3-D Secure on a page: "succeeded" or "declined"."""
        record = self.payments.get(payment_id)
        if record is None or not record.get("awaiting_3ds") or record["object"]["status"] != "pending":
            return "unavailable"
        record["awaiting_3ds"] = False
        if not passed:
            self._cancel(record["object"], "payment_network", "3d_secure_failed")
            return "declined"
        self._authorize(record["object"], record["internal"], self.now())
        return "succeeded"

    def _authorize(self, payment: Obj, internal: Obj, now: float) -> None:
        payment.pop("confirmation", None)
        payment["authorization_details"] = {
            "rrn": str(int(now * 1000))[-12:],
            "auth_code": "000000",
            "three_d_secure": {"applied": False},
        }
        if internal["save"] and payment["payment_method"].get("saved") is False:
            payment["payment_method"]["saved"] = True
            record = self.payments[payment["id"]]
            self.methods[payment["id"]] = {
                "object": copy.deepcopy(payment["payment_method"]),
                "test": record.get("test") or TestCard(),
                "decline_reason": None,
            }
        if internal["capture"]:
            self._succeed(payment, now)
        else:
            payment["status"] = "waiting_for_capture"
            payment["paid"] = True
            payment["expires_at"] = iso(now + HOLD_LIFETIME)
            self._notify("payment.waiting_for_capture", payment)

    def _succeed(self, payment: Obj, now: float, amount: Decimal | None = None) -> None:
        currency = payment["amount"]["currency"]
        if amount is not None:
            payment["amount"] = amount_json(amount, currency)
        value = Decimal(payment["amount"]["value"])
        fee = (value * FEE_PERCENT / 100).quantize(Decimal("0.01"))
        payment.update(
            status="succeeded",
            paid=True,
            refundable=True,
            captured_at=iso(now),
            income_amount=amount_json(value - fee, currency),
        )
        payment.pop("expires_at", None)
        if "receipt_registration" in payment:
            payment["receipt_registration"] = "succeeded"
        self._notify("payment.succeeded", payment)

    def _cancel(self, payment: Obj, party: str, reason: str) -> None:
        payment.pop("confirmation", None)
        payment.pop("expires_at", None)
        payment.update(
            status="canceled",
            paid=False,
            refundable=False,
            cancellation_details={"party": party, "reason": reason},
        )
        if "receipt_registration" in payment:
            payment["receipt_registration"] = "canceled"
        self._notify("payment.canceled", payment)

    def capture(self, payment_id: str, params: Obj) -> Obj:
        """Capture a held payment, all or part of it."""
        payment = self._held(payment_id)
        amount = None
        if params.get("amount") is not None:
            amount, currency = money(params["amount"], "amount")
            if currency != payment["amount"]["currency"] or amount > Decimal(payment["amount"]["value"]):
                raise invalid("the capture amount exceeds the held amount", "amount")
        self._succeed(payment, self.now(), amount)
        return copy.deepcopy(payment)

    def cancel(self, payment_id: str) -> Obj:
        """Release a held payment."""
        payment = self._held(payment_id)
        self._cancel(payment, "merchant", "canceled_by_merchant")
        return copy.deepcopy(payment)

    def _held(self, payment_id: str) -> Obj:
        self.payment(payment_id)  # 404 and expiry first
        payment: Obj = self.payments[payment_id]["object"]
        if payment["status"] != "waiting_for_capture":
            raise invalid(f"Payment is in status {payment['status']}, not waiting_for_capture", "payment_id")
        return payment

    def method(self, method_id: str) -> Obj:
        """Return a saved payment method (GET /payment_methods/{id})."""
        method = self.methods.get(method_id)
        if method is None:
            raise YooKassaError(404, "not_found", "Payment method doesn't exist", "payment_method_id")
        return {**copy.deepcopy(method["object"]), "status": "active"}

    # --- refunds --------------------------------------------------------------------------

    def create_refund(self, params: Obj) -> Obj:
        """Refund part or all of a succeeded payment (at once, as YooKassa does for cards)."""
        unknown = set(params) - _REFUND_FIELDS
        if unknown:
            raise invalid(f"unknown parameter {sorted(unknown)[0]}", sorted(unknown)[0])
        payment_id = params.get("payment_id")
        if not isinstance(payment_id, str) or payment_id not in self.payments:
            raise invalid("payment_id is not a payment of this shop", "payment_id")
        payment = self.payments[payment_id]["object"]
        amount, currency = money(params.get("amount"), "amount")
        if payment["status"] != "succeeded":
            raise invalid("only a succeeded payment can be refunded", "payment_id")
        refunded = Decimal(payment["refunded_amount"]["value"])
        if currency != payment["amount"]["currency"] or refunded + amount > Decimal(
            payment["amount"]["value"]
        ):
            raise invalid("the refund amount exceeds what is left of the payment", "amount.value")
        if "receipt" in params:
            check_receipt(params["receipt"], amount, currency)
        refund: Obj = {
            "id": str(uuid.uuid4()),
            "payment_id": payment_id,
            "status": "succeeded",
            "amount": amount_json(amount, currency),
            "created_at": iso(self.now()),
        }
        if params.get("description"):
            refund["description"] = str(params["description"])[:250]
        if params.get("metadata"):
            refund["metadata"] = {str(k): str(v) for k, v in params["metadata"].items()}
        if "receipt" in params:
            refund["receipt_registration"] = "succeeded"
        payment["refunded_amount"] = amount_json(refunded + amount, currency)
        payment["refundable"] = refunded + amount < Decimal(payment["amount"]["value"])
        self.refunds[refund["id"]] = refund
        self._notify("refund.succeeded", refund)
        return copy.deepcopy(refund)

    def refund(self, refund_id: str) -> Obj:
        """Return a refund."""
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise YooKassaError(404, "not_found", "Refund doesn't exist or access denied", "refund_id")
        return copy.deepcopy(refund)

    # --- lists ----------------------------------------------------------------------------

    def listing(self, objects: list[Obj], query: dict[str, str]) -> Obj:
        """Return YooKassa's list answer: newest first, `created_at.*` filters, `limit`, `cursor`."""
        bounds = {
            "gte": lambda t, b: t >= b,
            "gt": lambda t, b: t > b,
            "lte": lambda t, b: t <= b,
            "lt": lambda t, b: t < b,
        }
        chosen = []
        for obj in objects:
            stamp = parse_iso(obj["created_at"])
            keep = True
            for op, test in bounds.items():
                if f"created_at.{op}" in query:
                    try:
                        keep = keep and test(stamp, parse_iso(query[f"created_at.{op}"]))
                    except ValueError as exc:
                        raise invalid(f"created_at.{op} is not an ISO 8601 time", f"created_at.{op}") from exc
            if "payment_id" in query and obj.get("payment_id") != query["payment_id"]:
                keep = False
            if "status" in query and obj.get("status") != query["status"]:
                keep = False
            if keep:
                chosen.append(obj)
        chosen.sort(key=lambda o: (o["created_at"], o["id"]), reverse=True)
        try:
            limit = int(query.get("limit", "10"))
            start = int(query.get("cursor", "0") or 0)
        except ValueError as exc:
            raise invalid("limit and cursor must be numbers", "limit") from exc
        if not 1 <= limit <= 100:
            raise invalid("limit must be 1 to 100", "limit")
        page = chosen[start : start + limit]
        answer: Obj = {"type": "list", "items": copy.deepcopy(page)}
        if start + limit < len(chosen):
            answer["next_cursor"] = str(start + limit)
        return answer

    def list_payments(self, query: dict[str, str]) -> Obj:
        """Return a page of payments."""
        for record in self.payments.values():
            self._expire(record["object"])
        return self.listing([record["object"] for record in self.payments.values()], query)

    def list_refunds(self, query: dict[str, str]) -> Obj:
        """Return a page of refunds."""
        return self.listing(list(self.refunds.values()), query)
