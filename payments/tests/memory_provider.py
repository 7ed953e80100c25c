"""The test's handle on the in-memory provider: pay a page, look at what the provider holds.

The `memory_provider` fixture (root conftest.py) switches `get_gateway()` to the in-memory
provider for one test and returns a `MemoryProvider`. Use it where the provider only sets the
scene for a domain rule; the HTTP sandbox (`stripe_sandbox`) stays for the gateway contract and
end-to-end tests.
"""

from payments.gateways.base import ChargeInfo, CheckoutSession, ProviderPayment, RefundInfo
from payments.gateways.memory import MemoryGateway, PayResult


class MemoryProvider:
    """Drive and inspect the in-memory provider, as the sandbox's control API does for the HTTP one."""

    def __init__(self, gateway: MemoryGateway) -> None:
        self.gateway = gateway

    def pay(self, session_id: str | None, card_number: str = "4242424242424242") -> PayResult:
        """Pay a checkout page with a test card (or save it, in setup mode), without the form."""
        assert session_id, "the checkout has no page at the provider"
        return self.gateway.pay_checkout(session_id, card_number)

    def authenticate(self, session_id: str | None, *, succeed: bool = True) -> PayResult:
        """Complete (or fail) the 3-D Secure step the page waits for."""
        assert session_id, "the checkout has no page at the provider"
        return self.gateway.authenticate_checkout(session_id, succeed=succeed)

    def checkout_sessions(self) -> list[CheckoutSession]:
        """Return every checkout page opened, oldest first."""
        return self.gateway.checkout_sessions()

    def product_name(self, session_id: str | None) -> str | None:
        """Return the name a payment page shows for what is bought (its one line item)."""
        assert session_id, "the checkout has no page at the provider"
        return self.gateway.state.sessions[session_id].product_name

    def payment_intents(self) -> list[ProviderPayment]:
        """Return every payment attempt, oldest first (checkout and off-session alike)."""
        return self.gateway.payment_intents()

    def charges(self) -> list[ChargeInfo]:
        """Return every charge, succeeded or failed, oldest first."""
        return list(self.gateway.state.charges.values())

    def refunds(self) -> list[RefundInfo]:
        """Return every refund made, oldest first."""
        return list(self.gateway.state.refunds.values())

    def calls(self, operation: str | None = None) -> list[tuple[str, str | None]]:
        """Return the gateway calls made, (operation, idempotency key), optionally of one operation."""
        return [call for call in self.gateway.state.calls if operation is None or call[0] == operation]

    def writes(self) -> list[tuple[str, str | None]]:
        """Return the calls that asked the provider to change something (those with a key)."""
        return [call for call in self.gateway.state.calls if call[1] is not None]
