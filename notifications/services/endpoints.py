"""Where events may be sent: endpoint URLs checked when staff save them and before every POST.

Staff type an endpoint's URL in admin and the dispatcher POSTs to it from inside our network.
Unchecked, that lets anyone with admin access make the service call its neighbours (the
database's or Redis' port, a cloud metadata address, an admin page on localhost). So unless
EVENT_ENDPOINTS_ALLOW_PRIVATE is on (local development and tests, where the receiver runs on
127.0.0.1), an endpoint managed in admin must be https and its host must resolve to public
addresses only. DNS can change after the save, so before each POST the host is resolved and
checked again, and the connection goes to the address that was checked, never to a second
lookup's answer.

Endpoints from EVENT_ENDPOINTS are the operator's own configuration, like DATABASE_URL: they
may be internal, and only their scheme is checked.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext_noop

from core.errors import DomainError
from notifications.models import EndpointSource, EventEndpoint

DEFAULT_PORTS = {"http": 80, "https": 443}


class EndpointUrlRefused(DomainError):
    """An endpoint URL events may not be sent to; `details` fill the message's placeholders."""

    code = "endpoint_url_refused"
    message = gettext_noop("Events cannot be sent to this URL.")


class EndpointSchemeRefused(EndpointUrlRefused):
    code = "endpoint_scheme_refused"
    message = gettext_noop("Events cannot be sent to %(scheme)s URLs: use https.")


class EndpointHostUnresolvable(EndpointUrlRefused):
    code = "endpoint_host_unresolvable"
    message = gettext_noop("The host %(host)s cannot be found.")


class EndpointAddressNotPublic(EndpointUrlRefused):
    code = "endpoint_address_not_public"
    message = gettext_noop(
        "The host %(host)s is a private, loopback, link-local, multicast or reserved address, "
        "or resolves to one: events are sent only to public addresses."
    )


@dataclass(frozen=True)
class EndpointTarget:
    """Where one POST goes: the URL's parts, and the checked address to connect to."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def endpoint_is_restricted(endpoint: EventEndpoint) -> bool:
    """Return whether an endpoint must be https on a public address (admin's, unless allowed)."""
    return endpoint.source == EndpointSource.ADMIN and not settings.EVENT_ENDPOINTS_ALLOW_PRIVATE


def endpoint_url_validate(*, url: str) -> None:
    """Refuse a URL staff may not save as an endpoint (EndpointUrlRefused says why).

    Always http(s); under production settings https on a host resolving to public addresses only.
    """
    restricted = not settings.EVENT_ENDPOINTS_ALLOW_PRIVATE
    _scheme, host, port = _url_parts(url, restricted=restricted)
    if restricted:
        _public_addresses(host, port)


def endpoint_target(*, url: str, restricted: bool) -> EndpointTarget:
    """Resolve an endpoint URL for one POST, refusing it as `endpoint_url_validate` would when restricted."""
    scheme, host, port = _url_parts(url, restricted=restricted)
    addresses = _public_addresses(host, port) if restricted else _resolve(host, port)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return EndpointTarget(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def endpoint_connection(target: EndpointTarget, *, timeout: float) -> http.client.HTTPConnection:
    """Return an HTTP(S) connection to the target's checked address (TLS verified for its host name)."""
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target, timeout=timeout)
    return _PinnedHTTPConnection(target, timeout=timeout)


def _url_parts(url: str, *, restricted: bool) -> tuple[str, str, int]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in (("https",) if restricted else ("http", "https")):
        raise EndpointSchemeRefused(details={"scheme": scheme or "scheme-less"})
    if not parts.hostname:
        raise EndpointHostUnresolvable(details={"host": url})
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:  # a port out of range or not a number
        raise EndpointHostUnresolvable(details={"host": parts.netloc}) from exc
    return scheme, parts.hostname, port


def _resolve(host: str, port: int) -> list[str]:
    """Return the addresses a host name resolves to (an address literal: itself)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise EndpointHostUnresolvable(details={"host": host}) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise EndpointHostUnresolvable(details={"host": host})
    return addresses


def _public_addresses(host: str, port: int) -> list[str]:
    """Return a host's addresses if every one is public; one that is not refuses them all.

    All, not some: a name with one public and one internal address would otherwise reach
    the internal one whenever a client picks it.
    """
    addresses = _resolve(host, port)
    if not all(map(_is_public, addresses)):
        raise EndpointAddressNotPublic(details={"host": host})
    return addresses


def _is_public(address: str) -> bool:
    """Return whether an address is globally routable and unicast (an embedded IPv4 one too)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and 6to4's 2002:0a00:0001:: reach the IPv4 address inside them.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and not _is_public(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to the checked address; the Host header still names the URL's host."""

    def __init__(self, target: EndpointTarget, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address; SNI and the certificate check use the URL's host name."""

    def __init__(self, target: EndpointTarget, *, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.address = target.address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
