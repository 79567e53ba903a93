"""Downloading a poster over http(s): pinned connections, redirects checked, body capped.

Every hop of a redirect chain goes through :func:`~posterlab.fetch.guard.pin`; the body
is streamed and stops at the policy's ``max_bytes``, under a wall-clock deadline as well
as per-operation timeouts.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from posterlab.errors import FetchError, TransientFetchError
from posterlab.fetch.guard import Allowed, Target, pin
from posterlab.fetch.policy import FetchPolicy, too_large

CHUNK_BYTES = 64 * 1024  # a poster is ~30 KB: one or two reads
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS = frozenset({408, 425, 429})  # "not now" answers, worth another try later


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


def make_session() -> requests.Session:
    """A session for fetching: pinned transports, no proxies or .netrc from the env.

    Reuse one per worker process to keep connections alive between posters.
    """
    session = requests.Session()
    session.trust_env = False  # a proxy would resolve names itself, undoing the pinning
    session.mount("http://", PinnedAdapter())
    session.mount("https://", PinnedAdapter())
    return session


def fetch_url(url: str, policy: FetchPolicy, session: requests.Session) -> bytes:
    """The body of ``url``, following redirects itself, every hop checked by :func:`pin`."""
    deadline = time.monotonic() + policy.deadline_seconds
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
            _check_status(response.status_code, target.shown)
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
