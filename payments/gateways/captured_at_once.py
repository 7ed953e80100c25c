"""The two-stage calls of a provider that captures every payment at once (Stripe, the memory one)."""

from payments.gateways.base import ProviderPayment


class CapturedAtOnce:
    """Two-stage payments for a provider that holds nothing of ours.

    It captures every payment at once and saves cards without a hold, so the domain, which asks
    `card_check_holds_funds` first, never calls these.
    """

    card_check_holds_funds = False

    def capture_payment(
        self, payment_id: str, idempotency_key: str, amount: int | None = None
    ) -> ProviderPayment:
        """Refuse: no payment of ours is held here (`card_check_holds_funds` is false)."""
        raise NotImplementedError("payments are captured at once here; nothing is held")

    def cancel_payment(self, payment_id: str, idempotency_key: str) -> ProviderPayment:
        """Refuse: no payment of ours is held here (`card_check_holds_funds` is false)."""
        raise NotImplementedError("payments are captured at once here; nothing is held")
