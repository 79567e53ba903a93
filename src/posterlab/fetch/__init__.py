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

The rooms: :mod:`~posterlab.fetch.policy` (limits), :mod:`~posterlab.fetch.guard` (which
addresses may be reached, and pinning), :mod:`~posterlab.fetch.http` (the download) and
:mod:`~posterlab.fetch.local` (local files).
"""

from __future__ import annotations

import re

import requests

from posterlab.fetch.guard import IPAddress, refusal_reason
from posterlab.fetch.http import CHUNK_BYTES, PinnedAdapter, fetch_url, make_session
from posterlab.fetch.local import read_local
from posterlab.fetch.policy import FetchPolicy

__all__ = [
    "CHUNK_BYTES",
    "FetchPolicy",
    "IPAddress",
    "PinnedAdapter",
    "fetch_bytes",
    "make_session",
    "refusal_reason",
]

_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # RFC 3986 scheme: not a local path


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
        return read_local(source, max_bytes=policy.max_bytes, base_dir=base_dir)
    if session is not None:
        return fetch_url(source, policy, session)
    with make_session() as own:
        return fetch_url(source, policy, own)
