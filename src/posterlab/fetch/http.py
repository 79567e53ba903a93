"""Downloading a poster over http(s): pinned connections, redirects checked, body capped.

Every hop of a redirect chain goes through :func:`~posterlab.fetch.guard.pin`; the body
is streamed and stops at the policy's ``max_bytes``. The policy's deadline bounds the
whole download, headers included: a :class:`~posterlab.fetch.deadline.Watchdog` shuts
the socket down when it passes (see :mod:`posterlab.fetch.deadline`).
"""

from __future__ import annotations

import email.utils
import time
from contextlib import closing
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from posterlab.errors import FetchError, TransientFetchError
from posterlab.fetch.deadline import POOL_CLASSES, Watch, Watchdog
from posterlab.fetch.guard import Allowed, Target, pin
from posterlab.fetch.policy import FetchPolicy, too_large

CHUNK_BYTES = 64 * 1024  # a poster is ~30 KB: one or two reads
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 425, 429})  # "not now" answers, worth another try later


class TransientHttpError(TransientFetchError):
    """A 5xx, 408, 425 or 429 answer; ``retry_after`` is the server's Retry-After in seconds."""

    def __init__(self, message: str, *, code: str, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class PinnedAdapter(HTTPAdapter):
    """A transport for URLs whose host :func:`~posterlab.fetch.guard.pin` replaced by the IP.

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

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        # connections that hand their socket to the download's deadline watch
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)  # type: ignore[arg-type]


def make_session(adapter: PinnedAdapter | None = None) -> requests.Session:
    """A session for fetching: pinned transports, no proxies or .netrc from the env.

    Reuse one per worker process to keep connections alive between posters. Sessions of
    several threads may share one ``adapter`` (its connection pools are thread-safe);
    closing such a session closes the shared adapter too.
    """
    session = requests.Session()
    session.trust_env = False  # a proxy would resolve names itself, undoing the pinning
    session.mount("http://", adapter or PinnedAdapter())
    session.mount("https://", adapter or PinnedAdapter())
    return session


def fetch_url(
    url: str, policy: FetchPolicy, session: requests.Session, watchdog: Watchdog | None = None
) -> bytes:
    """The body of ``url``, following redirects itself, every hop checked by :func:`pin`.

    The whole download, headers included, ends by the policy's deadline: ``watchdog``
    (one per process, shared by threads) cuts it there; without one, one is made for
    this download.
    """
    if watchdog is None:
        with closing(Watchdog()) as own:
            return fetch_url(url, policy, session, own)
    with watchdog.watch(time.monotonic() + policy.deadline_seconds) as watch:
        try:
            body = _follow(url, policy, session, watch.deadline)
        except FetchError as exc:
            raise _expired(watch, url) or exc from None
        late = _expired(watch, url)
        if late is not None:  # a body cut short by the watchdog may look complete
            raise late
        return body


def _expired(watch: Watch, url: str) -> TransientFetchError | None:
    if not watch.expired:
        return None
    shown = url.split("?", 1)[0][:300]
    return _timeout(shown, "took longer than the deadline in all")


def _follow(url: str, policy: FetchPolicy, session: requests.Session, deadline: float) -> bytes:
    allowed = Allowed.parse(policy.allow)
    seen = {url}
    for _hop in range(policy.max_redirects + 1):
        target = pin(url, allowed)
        with _send(session, target, policy, deadline) as response:
            location = response.headers.get("Location")
            if response.status_code in _REDIRECTS and location:
                url = urljoin(url, location)
                if url in seen:
                    raise FetchError(f"{target.shown} redirects in a loop",
                                     code="fetch-redirect-loop")
                seen.add(url)
                continue
            _check_status(response.status_code, target.shown,
                          response.headers.get("Retry-After"))
            return _read_body(response, policy, deadline, target.shown)
    raise FetchError(f"{target.shown}: more than {policy.max_redirects} redirects",
                     code="fetch-too-many-redirects")


def _send(
    session: requests.Session, target: Target, policy: FetchPolicy, deadline: float
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


def _check_status(status: int, shown: str, retry_after: str | None = None) -> None:
    if 200 <= status < 300:
        return
    if status >= 500 or status in _RETRYABLE_STATUS:
        raise TransientHttpError(f"{shown}: HTTP {status} from the server; will retry",
                                 code=f"fetch-http-{status}",
                                 retry_after=parse_retry_after(retry_after))
    advice = "the poster is not there; fix or drop the URL" if status in (404, 410) else (
        "the server refuses the request")
    raise FetchError(f"{shown}: HTTP {status}: {advice}", code=f"fetch-http-{status}")


def _read_body(
    response: requests.Response, policy: FetchPolicy, deadline: float, shown: str
) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise too_large(shown, policy.max_bytes)
    body = bytearray()
    while True:
        _remaining(deadline, policy, shown)
        chunk = _read_chunk(response, policy, shown)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > policy.max_bytes:
            raise too_large(shown, policy.max_bytes)


def _read_chunk(response: requests.Response, policy: FetchPolicy, shown: str) -> bytes:
    try:
        # read1, not iter_content: it returns what has arrived instead of waiting for a
        # full chunk, so a server trickling bytes meets the deadline check between reads
        return response.raw.read1(CHUNK_BYTES)
    except urllib3.exceptions.ReadTimeoutError:
        raise _timeout(shown, f"no byte for {policy.read_timeout:g} s") from None
    except urllib3.exceptions.DecodeError as exc:
        raise FetchError(f"{shown}: body cannot be decoded ({exc})",
                         code="fetch-bad-encoding") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientFetchError(f"{shown}: connection broke while reading ({_root(exc)})",
                                  code="fetch-connection") from None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or ``None``.

    >>> parse_retry_after("2"), parse_retry_after("soon")
    (2.0, None)
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; a naive one cannot be compared
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _remaining(deadline: float, policy: FetchPolicy, shown: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timeout(shown, f"took more than {policy.deadline_seconds:g} s in all")
    return remaining


def _timeout(shown: str, what: str) -> TransientFetchError:
    return TransientFetchError(f"{shown}: {what}; will retry", code="fetch-timeout")


def _root(exc: BaseException) -> str:
    """The innermost cause's class name: informative, and never echoes a URL's secrets."""
    for _ in range(10):  # causes can be long, never endless
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc.__class__.__name__
