"""Who may post a provider's webhooks: the check for providers that sign nothing (YooKassa).

Stripe signs every event, so anyone may post and the signature decides. YooKassa signs nothing:
its notifications are accepted only from the addresses it publishes (`YOOKASSA_NOTIFICATION_IPS`),
and the loopback address outside production settings (the offline sandbox, tests). Even then a
notification is only a hint: its object is read again from YooKassa's API by id.

The sender is the TCP peer, or, when the peer is our reverse proxy (`TRUSTED_PROXY_IPS`), the
address the proxy appended last to X-Forwarded-For. Anything else a client sends is not
believed (config.middleware.TrustedProxyMiddleware also strips the header from other peers).
"""

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from config.middleware import trusted_networks

# The setting that lists each such provider's published addresses.
SENDER_ADDRESS_SETTINGS = {"yookassa": "YOOKASSA_NOTIFICATION_IPS"}


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _within(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entries: Iterable[str]) -> bool:
    return any(address in network for network in trusted_networks(entries))


def webhook_sender_address(
    request: HttpRequest | Request,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return the address a webhook came from: the peer, or what our trusted proxy says the peer was."""
    peer = _ip(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and _within(peer, settings.TRUSTED_PROXY_IPS):
        # The proxy appends the address it saw; anything before it the client may have made up.
        return _ip(forwarded.split(",")[-1])
    return peer


def webhook_sender_allowed(*, provider: str, request: HttpRequest | Request) -> bool:
    """Return whether `request` may deliver `provider`'s webhooks (always, for a provider that signs)."""
    setting = SENDER_ADDRESS_SETTINGS.get(provider)
    if setting is None:
        return True
    sender = webhook_sender_address(request)
    if sender is None:
        return False
    if sender.is_loopback and not settings.BILLING_PRODUCTION:
        return True
    return _within(sender, getattr(settings, setting, []))
