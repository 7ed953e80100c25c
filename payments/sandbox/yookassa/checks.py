"""What the YooKassa sandbox refuses as YooKassa would: its error shape, amounts and 54-FZ receipts."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

Obj = dict[str, Any]


class YooKassaError(Exception):
    """An error answer in YooKassa's shape."""

    def __init__(self, status: int, code: str, description: str, parameter: str | None = None) -> None:
        super().__init__(description)
        self.status, self.code, self.description, self.parameter = status, code, description, parameter

    def body(self) -> Obj:
        """Return the answer's JSON."""
        body: Obj = {
            "type": "error",
            "id": str(uuid.uuid4()),
            "code": self.code,
            "description": self.description,
        }
        if self.parameter:
            body["parameter"] = self.parameter
        return body


def invalid(description: str, parameter: str | None = None) -> YooKassaError:
    """Return a 400 invalid_request."""
    return YooKassaError(400, "invalid_request", description, parameter)


def money(value: Any, parameter: str) -> tuple[Decimal, str]:
    if not isinstance(value, dict):
        raise invalid("amount is required", parameter)
    try:
        amount = Decimal(str(value.get("value")))
    except InvalidOperation as exc:
        raise invalid("amount.value is not a number", f"{parameter}.value") from exc
    currency = value.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or currency != currency.upper():
        raise invalid("currency must be an ISO 4217 code", f"{parameter}.currency")
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise invalid("amount.value must be positive with at most two decimals", f"{parameter}.value")
    return amount, currency


def amount_json(value: Decimal, currency: str) -> Obj:
    return {"value": f"{value:.2f}", "currency": currency}


def check_receipt(receipt: Any, total: Decimal, currency: str) -> None:
    """Refuse a 54-FZ receipt YooKassa would refuse: no customer contact, no items, wrong sum."""
    if not isinstance(receipt, dict):
        raise invalid("receipt must be an object", "receipt")
    customer = receipt.get("customer") or {}
    if not (customer.get("email") or customer.get("phone") or receipt.get("email") or receipt.get("phone")):
        raise invalid("receipt.customer needs an email or a phone", "receipt.customer")
    items = receipt.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("receipt.items must not be empty", "receipt.items")
    summed = Decimal(0)
    for n, item in enumerate(items):
        where = f"receipt.items[{n}]"
        if not isinstance(item, dict) or not item.get("description"):
            raise invalid("an item needs a description", where)
        if len(str(item["description"])) > 128:
            raise invalid("an item's description is at most 128 characters", f"{where}.description")
        value, item_currency = money(item.get("amount"), f"{where}.amount")
        if item_currency != currency:
            raise invalid("an item's currency must be the payment's", f"{where}.amount.currency")
        vat = item.get("vat_code")
        if isinstance(vat, bool) or not isinstance(vat, int) or not 1 <= vat <= 12:
            raise invalid("vat_code must be 1 to 12", f"{where}.vat_code")
        for field in ("payment_subject", "payment_mode"):
            if not isinstance(item.get(field), str) or not item[field]:
                raise invalid(f"{field} is required", f"{where}.{field}")
        try:
            summed += value * Decimal(str(item.get("quantity")))
        except InvalidOperation as exc:
            raise invalid("quantity is not a number", f"{where}.quantity") from exc
    if summed != total:
        raise invalid("the receipt's items do not add up to the amount", "receipt.items")
