"""Getting the bytes of a poster source, a local path or an http(s) URL, safely.

A manifest is input from outside: its URLs may point at the cloud metadata service, at
a database on the private network, at a server that trickles one byte a second, or at
an endless body. :func:`fetch_bytes` therefore

* fetches ``http``/``https`` only (``fetch-bad-scheme`` otherwise);
* refuses loopback, private, link-local, unspecified, multicast and reserved addresses,
  their IPv4-mapped / 6to4 / Teredo / NAT64 IPv6 forms, and names resolving to any of
  them (every address is checked), unless :attr:`FetchPolicy.allow` lifts the refusal;
* connects to the address it checked (the URL's host is replaced by the IP; the Host
  header and, for https, SNI and certificate checks keep the name), so a DNS answer
  that changes between check and connect (rebinding) cannot redirect the request;
* follows redirects itself, checking every hop by the same rules;
* streams the body and stops at :attr:`FetchPolicy.max_bytes`, under a wall-clock
  deadline as well as per-operation timeouts.

Residual risks, documented rather than hidden: name resolution (``getaddrinfo``) has no
timeout of its own; the deadline is checked between reads of the body, so a server
trickling its *headers* is bounded by the read timeout per byte and http.client's
header limits only; environment proxies are not used by :func:`make_session` sessions.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from posterlab.errors import FetchError, TransientFetchError

if TYPE_CHECKING:
    from posterlab.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CHUNK_BYTES = 64 * 1024  # a poster is ~30 KB: one or two reads
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # RFC 3986 scheme: not a local path
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 425, 429})  # "not now" answers, worth another try later
_HEADERS = {
    "User-Agent": "posterlab (poster feature extraction)",
    "Accept": "image/*, */*;q=0.5",
    "Accept-Encoding": "identity",  # images are compressed already; no gzip bombs either
}


@dataclass(frozen=True)
class FetchPolicy:
    """What :func:`fetch_bytes` may reach and how long and how much it may read.

    ``allow`` holds hostnames (exact, case-insensitive) and addresses or CIDRs
    (``127.0.0.1``, ``10.0.0.0/8``, ``::1``) that may be reached although they are
    loopback or private (``POSTERLAB_FETCH_ALLOW``). A CIDR matches addresses of its own
    family only: allowing ``127.0.0.1`` does not allow ``::ffff:127.0.0.1``.
    ``total_timeout`` bounds a whole fetch, redirects included; ``None`` means
    ``connect_timeout + 3 * read_timeout``.
    """

    allow: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        positive = ("connect_timeout", "read_timeout", "max_bytes", "total_timeout")
        for name in positive:
            value = getattr(self, name)
            if value is not None and not value > 0:  # "not >": refuses nan as well
                raise ValueError(f"FetchPolicy.{name} must be positive, got {value}")
        if self.max_redirects < 0:
            raise ValueError(f"FetchPolicy.max_redirects must be >= 0, got {self.max_redirects}")

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The policy of ``settings`` (``fetch_allow``, timeouts, ``max_download_bytes``)."""
        return cls(
            allow=tuple(settings.fetch_allow),
            connect_timeout=settings.fetch_connect_timeout,
            read_timeout=settings.fetch_read_timeout,
            max_bytes=settings.max_download_bytes,
        )

    @property
    def deadline_seconds(self) -> float:
        """Wall-clock budget of one fetch, redirects included."""
        if self.total_timeout is not None:
            return self.total_timeout
        return self.connect_timeout + 3 * self.read_timeout


class PinnedAdapter(HTTPAdapter):
    """A transport for URLs whose host :func:`fetch_bytes` replaced by the checked IP.

    For https the TLS handshake still names (SNI) and verifies the certificate of the
    host in the ``Host`` header, so pinning the address costs no security.
    """

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        host_header = str(request.headers.get("Host") or "")
        if host_params["scheme"] == "https" and host_header:
            name = host_header.partition(":")[0]  # only DNS names are pinned: no IPv6 colons
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs


def make_session() -> requests.Session:
    """A session for :func:`fetch_bytes`: pinned transports, no proxies or .netrc from the env.

    Reuse one per worker process to keep connections alive between posters.
    """
    session = requests.Session()
    session.trust_env = False  # a proxy would resolve names itself, undoing the pinning
    session.mount("http://", PinnedAdapter())
    session.mount("https://", PinnedAdapter())
    return session


def fetch_bytes(
    source: str,
    *,
    policy: FetchPolicy,
    session: requests.Session | None = None,
    base_dir: str | None = None,
) -> bytes:
    """Return the bytes of a poster: a local file or an http(s) URL.

    Parameters
    ----------
    source : str
        An absolute or relative path (as made by :mod:`posterlab.manifest`) or a URL.
    policy : FetchPolicy
        Allowed private addresses, timeouts, size cap, redirect limit.
    session : requests.Session, optional
        From :func:`make_session` (https needs its :class:`PinnedAdapter`); a fresh one
        is made and closed when omitted.
    base_dir : str, optional
        Folder a local ``source`` must be inside (checked again after symlinks).

    Raises
    ------
    FetchError
        With a stable ``code``: ``fetch-not-found``, ``fetch-not-a-file``,
        ``fetch-path-escape``, ``fetch-too-large``, ``fetch-bad-scheme``, ``fetch-bad-url``,
        ``fetch-refused-address``, ``fetch-dns``, ``fetch-redirect-loop``,
        ``fetch-too-many-redirects``, ``fetch-tls``, ``fetch-http-<status>`` (4xx).
    TransientFetchError
        Worth retrying: ``fetch-timeout``, ``fetch-connection``, ``fetch-dns-temporary``,
        ``fetch-http-<status>`` (5xx, 408, 425, 429).

    Examples
    --------
    >>> fetch_bytes("https://example.org/p.jpg", policy=FetchPolicy())  # doctest: +SKIP
    b'\\xff\\xd8\\xff...'
    """
    if not _URL_RE.match(source):
        return _read_local(source, max_bytes=policy.max_bytes, base_dir=base_dir)
    if session is not None:
        return _fetch_url(source, policy, session)
    with make_session() as own:
        return _fetch_url(source, policy, own)


# -- local files ----------------------------------------------------------------------


def _read_local(path: str, *, max_bytes: int, base_dir: str | None) -> bytes:
    if base_dir is not None:
        base = os.path.realpath(base_dir)
        if os.path.commonpath([base, os.path.realpath(path)]) != base:
            raise FetchError(f"poster file {path} is outside {base}; refusing to read it",
                             code="fetch-path-escape")
    try:
        # O_NONBLOCK: opening a FIFO must not hang a worker; it is refused just below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FetchError(f"poster file {path} does not exist; check the manifest's "
                         "poster_file column or --poster-dir", code="fetch-not-found") from None
    except OSError as exc:
        raise FetchError(f"poster file {path} cannot be opened ({exc.strerror})",
                         code="fetch-unreadable") from None
    try:
        info = os.fstat(fd)  # of what was opened: no window for a swap after a stat()
        if not stat.S_ISREG(info.st_mode):
            raise FetchError(f"poster {path} is not a regular file", code="fetch-not-a-file")
        if info.st_size > max_bytes:
            raise _too_large(path, max_bytes)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        data = handle.read(max_bytes + 1)  # +1: a file growing while we read is caught too
    if len(data) > max_bytes:
        raise _too_large(path, max_bytes)
    return data


# -- URLs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    url: str  # host replaced by the checked IP
    headers: dict[str, str]
    shown: str  # for messages: no query string, which may carry a signature


def _fetch_url(url: str, policy: FetchPolicy, session: requests.Session) -> bytes:
    deadline = time.monotonic() + policy.deadline_seconds
    allowed_names, allowed_networks = _parse_allow(policy.allow)
    seen = {url}
    for _hop in range(policy.max_redirects + 1):
        target = _pin(url, allowed_names, allowed_networks)
        with _send(session, target, policy, deadline) as response:
            location = response.headers.get("Location")
            if response.status_code in _REDIRECTS and location:
                url = urljoin(url, location)
                if url in seen:
                    raise FetchError(f"{target.shown} redirects in a loop",
                                     code="fetch-redirect-loop")
                seen.add(url)
                continue
            _check_status(response.status_code, target.shown)
            return _read_body(response, policy, deadline, target.shown)
    raise FetchError(f"{target.shown}: more than {policy.max_redirects} redirects",
                     code="fetch-too-many-redirects")


def _pin(url: str, names: frozenset[str], networks: tuple[Any, ...]) -> _Target:
    """Check ``url``'s scheme and addresses; return it aimed at the checked IP."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"{url[:200]!r} is not a valid URL ({exc})",
                         code="fetch-bad-url") from None
    shown = urlunsplit(parts._replace(query="", fragment=""))[:300]
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(f"{shown}: only http and https URLs are fetched",
                         code="fetch-bad-scheme")
    if parts.username is not None or parts.password is not None:
        raise FetchError(f"{parts.scheme}://{parts.hostname}/...: URLs with credentials "
                         "are not fetched", code="fetch-bad-url")
    host = parts.hostname
    if not host:
        raise FetchError(f"{shown}: the URL has no host", code="fetch-bad-url")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        _check_address(literal, host, networks, shown)
        return _Target(url, dict(_HEADERS), shown)
    try:
        name = host.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError(f"{shown}: host name is not valid", code="fetch-bad-url") from None
    addresses = _resolve(name, port or (443 if parts.scheme.lower() == "https" else 80), shown)
    if name not in names:
        for address in addresses:
            _check_address(address, name, networks, shown)
    ip = addresses[0]
    netloc = f"[{ip}]" if ip.version == 6 else str(ip)
    if port is not None:
        netloc += f":{port}"
    headers = {**_HEADERS, "Host": name if port is None else f"{name}:{port}"}
    return _Target(urlunsplit(parts._replace(netloc=netloc)), headers, shown)


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


def _parse_allow(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[Any, ...]]:
    names: set[str] = set()
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
        except ValueError:
            names.add(entry.strip().rstrip(".").lower())
    return frozenset(names), tuple(networks)


def _send(
    session: requests.Session, target: _Target, policy: FetchPolicy, deadline: float
) -> requests.Response:
    if target.url.lower().startswith("https:") and "Host" in target.headers and not isinstance(
        session.get_adapter(target.url), PinnedAdapter
    ):
        raise ValueError("fetch_bytes needs a session from posterlab.fetch.make_session() "
                         "for https: its adapter keeps TLS checks on the pinned address")
    remaining = _remaining(deadline, policy, target.shown)
    timeout = (min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining))
    try:
        return session.get(target.url, headers=target.headers, stream=True,
                           allow_redirects=False, timeout=timeout)
    except requests.Timeout:
        raise _timeout(target.shown, "no answer in time") from None
    except requests.exceptions.SSLError as exc:
        raise FetchError(f"{target.shown}: TLS failed ({exc.__class__.__name__})",
                         code="fetch-tls") from None
    except requests.ConnectionError as exc:
        raise TransientFetchError(f"{target.shown}: connection failed ({_root(exc)})",
                                  code="fetch-connection") from None
    except requests.RequestException as exc:
        raise FetchError(f"{target.shown}: request failed ({_root(exc)})",
                         code="fetch-failed") from None


def _check_status(status: int, shown: str) -> None:
    if 200 <= status < 300:
        return
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise TransientFetchError(f"{shown}: HTTP {status} from the server; will retry",
                                  code=f"fetch-http-{status}")
    advice = "the poster is not there; fix or drop the URL" if status in (404, 410) else (
        "the server refuses the request")
    raise FetchError(f"{shown}: HTTP {status}: {advice}", code=f"fetch-http-{status}")


def _read_body(
    response: requests.Response, policy: FetchPolicy, deadline: float, shown: str
) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise _too_large(shown, policy.max_bytes)
    body = bytearray()
    while True:
        _remaining(deadline, policy, shown)
        try:
            # read1, not iter_content: it returns what has arrived instead of waiting for a
            # full chunk, so a server trickling bytes meets the deadline check above
            chunk = response.raw.read1(CHUNK_BYTES)
        except urllib3.exceptions.ReadTimeoutError:
            raise _timeout(shown, f"no byte for {policy.read_timeout:g} s") from None
        except urllib3.exceptions.DecodeError as exc:
            raise FetchError(f"{shown}: body cannot be decoded ({exc})",
                             code="fetch-bad-encoding") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientFetchError(f"{shown}: connection broke while reading ({_root(exc)})",
                                      code="fetch-connection") from None
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > policy.max_bytes:
            raise _too_large(shown, policy.max_bytes)


def _remaining(deadline: float, policy: FetchPolicy, shown: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timeout(shown, f"took more than {policy.deadline_seconds:g} s in all")
    return remaining


def _timeout(shown: str, what: str) -> TransientFetchError:
    return TransientFetchError(f"{shown}: {what}; will retry", code="fetch-timeout")


def _too_large(shown: str, max_bytes: int) -> FetchError:
    return FetchError(f"{shown} is larger than {max_bytes} bytes (max_download_bytes); "
                      "raise POSTERLAB_MAX_DOWNLOAD_BYTES if it is a real poster",
                      code="fetch-too-large")


def _root(exc: BaseException) -> str:
    """The innermost cause's class name: informative, and never echoes a URL's secrets."""
    for _ in range(10):  # causes can be long, never endless
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc.__class__.__name__
