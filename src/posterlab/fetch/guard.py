"""The address guard: which hosts a poster URL may reach, and the URL aimed at the checked IP.

Loopback, private, link-local, unspecified, multicast and reserved addresses are refused,
with their IPv4-mapped / 6to4 / Teredo / NAT64 IPv6 forms, and names resolving to any of
them (every address is checked), unless the policy's ``allow`` list lifts the refusal.
:func:`pin` returns the URL with its host replaced by the address it checked, so a DNS
answer that changes between check and connect (rebinding) cannot redirect the request.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from posterlab.errors import FetchError, TransientFetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
HEADERS = {
    "User-Agent": "posterlab (poster feature extraction)",
    "Accept": "image/*, */*;q=0.5",
    "Accept-Encoding": "identity",  # images are compressed already; no gzip bombs either
}


@dataclass(frozen=True)
class Target:
    """A checked URL: aimed at the IP, with the headers that keep the name."""

    url: str  # host replaced by the checked IP
    headers: dict[str, str]
    shown: str  # for messages: no query string, which may carry a signature


@dataclass(frozen=True)
class Allowed:
    """The policy's ``allow`` list, parsed: exact host names and networks."""

    names: frozenset[str]
    networks: tuple[Any, ...]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> Allowed:
        """Split ``entries`` into networks (addresses, CIDRs) and host names."""
        names: set[str] = set()
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
            except ValueError:
                names.add(entry.strip().rstrip(".").lower())
        return cls(frozenset(names), tuple(networks))


def pin(url: str, allowed: Allowed) -> Target:
    """Check ``url``'s scheme and addresses; return it aimed at the checked IP.

    Raises
    ------
    FetchError
        ``fetch-bad-url``, ``fetch-bad-scheme``, ``fetch-refused-address``, ``fetch-dns``.
    TransientFetchError
        ``fetch-dns-temporary``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"{url[:200]!r} is not a valid URL ({exc})",
                         code="fetch-bad-url") from None
    shown = urlunsplit(parts._replace(query="", fragment=""))[:300]
    host = _checked_host(parts, shown)
    literal = _ip_literal(host)
    if literal is not None:
        _check_address(literal, host, allowed.networks, shown)
        return Target(url, dict(HEADERS), shown)
    try:
        name = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError(f"{shown}: host name is not valid", code="fetch-bad-url") from None
    addresses = _resolve(name, port or (443 if parts.scheme.lower() == "https" else 80), shown)
    if name not in allowed.names:
        for address in addresses:
            _check_address(address, name, allowed.networks, shown)
    ip = addresses[0]
    netloc = f"[{ip}]" if ip.version == 6 else str(ip)
    if port is not None:
        netloc += f":{port}"
    headers = {**HEADERS, "Host": name if port is None else f"{name}:{port}"}
    return Target(urlunsplit(parts._replace(netloc=netloc)), headers, shown)


def _checked_host(parts: SplitResult, shown: str) -> str:
    """The host of a URL that is http(s), without credentials."""
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(f"{shown}: only http and https URLs are fetched",
                         code="fetch-bad-scheme")
    if parts.username is not None or parts.password is not None:
        raise FetchError(f"{parts.scheme}://{parts.hostname}/...: URLs with credentials "
                         "are not fetched", code="fetch-bad-url")
    if not parts.hostname:
        raise FetchError(f"{shown}: the URL has no host", code="fetch-bad-url")
    return str(parts.hostname)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(name: str, port: int, shown: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise TransientFetchError(f"{shown}: name lookup failed for now ({exc.strerror})",
                                      code="fetch-dns-temporary") from None
        raise FetchError(f"{shown}: host {name} not found ({exc.strerror})",
                         code="fetch-dns") from None
    # sockaddr[0] may carry an IPv6 scope ("fe80::1%eth0"); ip_address understands it
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be fetched by default (``"loopback"``, ...), or ``None``.

    IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by
    that address too.

    >>> refusal_reason(ipaddress.ip_address("::ffff:169.254.169.254"))
    'link-local (embeds 169.254.169.254)'
    >>> refusal_reason(ipaddress.ip_address("93.184.216.34")) is None
    True
    """
    candidates: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        teredo = address.teredo
        candidates += [ip for ip in (address.ipv4_mapped, address.sixtofour) if ip is not None]
        candidates += list(teredo) if teredo else []
        if address in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    for candidate in (*candidates, address):
        reason = _plain_refusal(candidate)
        if reason is not None:
            return reason if candidate is address else f"{reason} (embeds {candidate})"
    return None


def _plain_refusal(ip: IPAddress) -> str | None:
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("not globally routable", not ip.is_global),
    )
    return next((reason for reason, refused in checks if refused), None)


def _check_address(ip: IPAddress, host: str, networks: tuple[Any, ...], shown: str) -> None:
    reason = refusal_reason(ip)
    if reason is None or any(ip.version == net.version and ip in net for net in networks):
        return
    raise FetchError(
        f"{shown}: {host} is {ip}, a {reason} address; posters are not fetched from there "
        "unless it is listed in POSTERLAB_FETCH_ALLOW",
        code="fetch-refused-address",
    )
