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

* ends every download by its total deadline, headers included: the socket is shut down
  when it passes (:mod:`~posterlab.fetch.deadline`), however the server paces its bytes.

:func:`fetch_many` (or a :class:`Downloader` kept per process) fetches a batch with
downloads overlapping under a global and a per-host cap, and retries transient failures
without holding a slot while it waits; every rule above holds for each download.

Residual risks, documented rather than hidden: name resolution (``getaddrinfo``) has no
timeout of its own; an https handshake is bounded by the per-operation timeouts, not by
the total deadline; environment proxies are not used by :func:`make_session` sessions.

The rooms: :mod:`~posterlab.fetch.policy` (limits), :mod:`~posterlab.fetch.guard` (which
addresses may be reached, and pinning), :mod:`~posterlab.fetch.http` (the download),
:mod:`~posterlab.fetch.deadline` (the total deadline), :mod:`~posterlab.fetch.many`
(batches) and :mod:`~posterlab.fetch.local` (local files).
"""

from __future__ import annotations

import requests

from posterlab.fetch.guard import IPAddress, refusal_reason
from posterlab.fetch.http import CHUNK_BYTES, PinnedAdapter, fetch_url, make_session
from posterlab.fetch.local import is_local, read_local
from posterlab.fetch.many import Downloader, fetch_many
from posterlab.fetch.policy import FetchPolicy

__all__ = [
    "CHUNK_BYTES",
    "Downloader",
    "FetchPolicy",
    "IPAddress",
    "PinnedAdapter",
    "fetch_bytes",
    "fetch_many",
    "make_session",
    "refusal_reason",
]

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
    if is_local(source):
        return read_local(source, max_bytes=policy.max_bytes, base_dir=base_dir)
    if session is not None:
        return fetch_url(source, policy, session)
    with make_session() as own:
        return fetch_url(source, policy, own)
