"""Helpers of the refund tests: a payment paid through the sandbox, staff, and the sandbox's refunds."""

from typing import Any

from django.contrib.auth.models import Group, User

from payments.models import CheckoutSession, Payment
from payments.services.checkout import checkout_sync
from tariffs.models import Tariff


def pay(viewer_client: Any, sandbox: Any, user_id: str = "alice", email: str = "") -> Payment:
    """Subscribe a viewer to "monthly" (399.00 RUB) and pay with 4242; return the payment."""
    Tariff.objects.get_or_create(
        slug="monthly", defaults={"name": "Monthly", "amount": 39900, "currency": "RUB"}
    )
    client = viewer_client(user_id, email)
    body = client.post("/api/v1/subscriptions/", {"tariff": "monthly"}, format="json").json()
    checkout = CheckoutSession.objects.get(pk=body["checkout"]["id"])
    assert checkout.provider_session_id is not None
    sandbox.pay(checkout.provider_session_id, "4242424242424242")
    checkout_sync(provider_session_id=checkout.provider_session_id)
    return Payment.objects.select_related("subscription").get(checkout_sessions=checkout)


def support_staff(username: str) -> User:
    """Return a staff member in the Support role (a transactional test's flush leaves the group empty)."""
    user = User.objects.create_user(username=username, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="Support")[0])
    return user


def sandbox_refunds(sandbox: Any) -> list[dict[str, Any]]:
    """Return the refunds the sandbox made."""
    return list(sandbox.get("/objects", type="refund")["data"])


def has_access(viewer_client: Any, user_id: str = "alice") -> bool:
    """Return what the viewer's GET /api/v1/access/ says."""
    return bool(viewer_client(user_id).get("/api/v1/access/").json()["has_access"])
