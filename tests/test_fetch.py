"""fetch_bytes against real HTTP servers on 127.0.0.1, and on local files."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from posterlab.config import Settings
from posterlab.errors import FetchError, TransientFetchError
from posterlab.fetch import FetchPolicy, fetch_bytes, make_session, refusal_reason

POSTER = b"\xff\xd8\xff\xe0 not really a jpeg, but bytes are bytes"
LOCAL = FetchPolicy(allow=("127.0.0.1",), connect_timeout=2.0, read_timeout=2.0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests_seen: list[str]  # set on the subclass made per server

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self.requests_seen.append(self.path)
        route = getattr(self, "route_" + self.path.strip("/").split("/")[0].replace("-", "_"),
                        None)
        try:
            if route is None:
                self._send(404, b"no such poster")
            else:
                route()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as it should at its cap or deadline

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def route_ok(self) -> None:
        self._send(200, POSTER, **{"Content-Type": "text/html"})  # a lie, and irrelevant

    def route_gone(self) -> None:
        self._send(410)

    def route_error(self) -> None:
        self._send(500, b"boom")

    def route_busy(self) -> None:
        self._send(429, b"slow down")

    def route_echo_host(self) -> None:
        self._send(200, self.headers["Host"].encode())

    def route_loop_a(self) -> None:
        self._send(302, Location="/loop-b")

    def route_loop_b(self) -> None:
        self._send(302, Location="/loop-a")

    def route_chain(self) -> None:
        step = int(self.path.rsplit("/", 1)[1])
        self._send(302, Location=f"/chain/{step + 1}")

    def route_to_ok(self) -> None:
        self._send(301, Location="/ok")

    def route_to_metadata(self) -> None:
        self._send(302, Location="http://169.254.169.254/latest/meta-data/")

    def route_to_private(self) -> None:
        self._send(307, Location="http://10.0.0.1/poster.jpg")

    def route_to_file(self) -> None:
        self._send(302, Location="file:///etc/passwd")

    def route_declared_huge(self) -> None:
        self._send(200, b"x", **{"Content-Length": str(10**10)})

    def route_endless(self) -> None:
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        block = b"\x00" * 65536
        while True:
            self.wfile.write(block)

    def route_trickle(self) -> None:
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        while True:
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.02)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # endless and trickling handlers end with the test process

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hang up on purpose
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1; yields its base URL and the paths it was asked for."""
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"requests_seen": seen})
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def _fails(source: str, code: str, *, policy: FetchPolicy = LOCAL, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch_bytes(source, policy=policy, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code, info.value.reason
    return info.value


def test_a_poster_is_fetched_whatever_content_type_the_server_claims(server):
    base, _ = server
    assert fetch_bytes(f"{base}/ok", policy=LOCAL) == POSTER


def test_a_session_from_make_session_is_reused_across_fetches(server):
    base, _ = server
    with make_session() as session:
        assert fetch_bytes(f"{base}/ok", policy=LOCAL, session=session) == POSTER
        assert fetch_bytes(f"{base}/to-ok", policy=LOCAL, session=session) == POSTER


def test_a_missing_poster_is_a_permanent_http_404(server):
    base, _ = server
    error = _fails(f"{base}/missing.jpg", "fetch-http-404")
    assert not error.retryable


def test_a_gone_poster_is_a_permanent_http_410(server):
    base, _ = server
    assert not _fails(f"{base}/gone", "fetch-http-410").retryable


def test_a_server_error_is_retryable(server):
    base, _ = server
    error = _fails(f"{base}/error", "fetch-http-500")
    assert isinstance(error, TransientFetchError) and error.retryable


def test_too_many_requests_is_retryable(server):
    base, _ = server
    assert _fails(f"{base}/busy", "fetch-http-429").retryable


def test_a_redirect_to_an_allowed_address_is_followed(server):
    base, _ = server
    assert fetch_bytes(f"{base}/to-ok", policy=LOCAL) == POSTER


def test_a_redirect_loop_is_detected(server):
    base, _ = server
    _fails(f"{base}/loop-a", "fetch-redirect-loop")


def test_a_redirect_chain_longer_than_the_limit_is_refused(server):
    base, seen = server
    before = len(seen)
    policy = FetchPolicy(allow=("127.0.0.1",), max_redirects=3)
    _fails(f"{base}/chain/0", "fetch-too-many-redirects", policy=policy)
    assert len(seen) - before == 4  # the first request and three redirects, no more


@pytest.mark.parametrize("route", ["to-metadata", "to-private"])
def test_a_redirect_to_a_refused_address_is_refused_before_connecting(server, route):
    base, _ = server
    error = _fails(f"{base}/{route}", "fetch-refused-address")
    assert "POSTERLAB_FETCH_ALLOW" in str(error)


def test_a_redirect_to_a_file_url_is_refused(server):
    base, _ = server
    _fails(f"{base}/to-file", "fetch-bad-scheme")


def test_a_server_that_never_answers_times_out_as_retryable(silent_port):
    policy = FetchPolicy(allow=("127.0.0.1",), connect_timeout=1.0, read_timeout=0.3)
    error = _fails(f"http://127.0.0.1:{silent_port}/poster.jpg", "fetch-timeout", policy=policy)
    assert error.retryable


def test_a_closed_port_is_a_retryable_connection_error():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    assert _fails(f"http://127.0.0.1:{port}/", "fetch-connection").retryable


def test_an_endless_body_is_cut_at_the_cap(server):
    base, _ = server
    policy = FetchPolicy(allow=("127.0.0.1",), max_bytes=200_000)
    error = _fails(f"{base}/endless", "fetch-too-large", policy=policy)
    assert "200000" in str(error)


def test_a_declared_length_over_the_cap_is_refused_before_reading(server):
    base, _ = server
    _fails(f"{base}/declared-huge", "fetch-too-large")


def test_a_server_trickling_bytes_meets_the_total_deadline(server):
    base, _ = server
    policy = FetchPolicy(allow=("127.0.0.1",), read_timeout=1.0, total_timeout=0.5)
    error = _fails(f"{base}/trickle", "fetch-timeout", policy=policy)
    assert "in all" in str(error)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/poster.jpg",
                                 "gopher://example.org/1", "javascript://alert(1)"])
def test_schemes_other_than_http_and_https_are_refused(url):
    _fails(url, "fetch-bad-scheme")


def test_a_loopback_url_is_refused_when_nothing_is_allowed(server):
    base, seen = server
    before = len(seen)
    _fails(f"{base}/ok", "fetch-refused-address", policy=FetchPolicy())
    assert len(seen) == before  # refused without a connection


def test_localhost_is_refused_because_it_resolves_to_loopback(server):
    base, seen = server
    before = len(seen)
    port = base.rsplit(":", 1)[1]
    error = _fails(f"http://localhost:{port}/ok", "fetch-refused-address", policy=FetchPolicy())
    assert "loopback" in str(error)
    assert len(seen) == before


@pytest.mark.parametrize("url", ["http://[::1]/", "http://[::ffff:127.0.0.1]/",
                                 "http://[::ffff:169.254.169.254]/", "http://0.0.0.0/",
                                 "http://169.254.169.254/latest/meta-data/",
                                 "http://2130706433/", "http://0x7f.1/", "http://10.1/"])
def test_loopback_and_private_addresses_in_any_spelling_are_refused(url):
    _fails(url, "fetch-refused-address", policy=FetchPolicy())


@pytest.mark.parametrize("url", ["http://[::1]/", "http://[::ffff:127.0.0.1]/"])
def test_allowing_127_0_0_1_does_not_allow_its_ipv6_spellings(url):
    _fails(url, "fetch-refused-address", policy=LOCAL)


def test_a_name_is_resolved_once_and_the_request_goes_to_the_checked_address(server):
    base, _ = server
    port = base.rsplit(":", 1)[1]
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", int(port))}
    if addresses != {"127.0.0.1"}:
        pytest.skip(f"localhost resolves to {addresses} here, not only to 127.0.0.1")
    # the connection goes to 127.0.0.1 while the server still sees the name it was asked by
    body = fetch_bytes(f"http://localhost:{port}/echo-host", policy=LOCAL)
    assert body == f"localhost:{port}".encode()


def test_an_allowed_host_name_lifts_the_refusal(server):
    base, _ = server
    port = base.rsplit(":", 1)[1]
    policy = FetchPolicy(allow=("LOCALHOST",))
    assert fetch_bytes(f"http://localhost:{port}/ok", policy=policy) == POSTER


def test_an_allowed_network_lifts_the_refusal(server):
    base, _ = server
    assert fetch_bytes(f"{base}/ok", policy=FetchPolicy(allow=("127.0.0.0/8",))) == POSTER


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[tuple[int, str]]:
    """An https server on 127.0.0.1 with a self-signed certificate for ``localhost``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    httpd = _Server(("127.0.0.1", 0), type("Handler", (_Handler,), {"requests_seen": []}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], str(cert)
    httpd.shutdown()
    httpd.server_close()


def test_https_to_a_pinned_address_still_checks_the_certificate_of_the_name(tls_server):
    port, cert = tls_server
    if {info[4][0] for info in socket.getaddrinfo("localhost", port)} != {"127.0.0.1"}:
        pytest.skip("localhost does not resolve to 127.0.0.1 only here")
    with make_session() as session:
        session.verify = cert  # trust the test certificate, issued to "localhost" only
        body = fetch_bytes(f"https://localhost:{port}/echo-host", policy=LOCAL, session=session)
        assert body == f"localhost:{port}".encode()
        # the same server by its address: the certificate does not name 127.0.0.1
        _fails(f"https://127.0.0.1:{port}/ok", "fetch-tls", session=session)


def test_https_through_a_session_without_the_pinned_adapter_is_a_programming_error():
    import requests

    with requests.Session() as session, pytest.raises(ValueError, match="make_session"):
        fetch_bytes("https://localhost/poster.jpg", policy=FetchPolicy(allow=("localhost",)),
                    session=session)


def test_urls_with_credentials_are_refused_without_echoing_the_password():
    error = _fails("http://user:s3cret@example.org/p.jpg", "fetch-bad-url")
    assert "s3cret" not in str(error)


@pytest.mark.parametrize(
    ("address", "reason"),
    [("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
     ("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"), ("0.0.0.0", "unspecified"),
     ("224.0.0.1", "multicast"), ("240.0.0.1", "private"), ("100.64.0.1", "not globally routable"),
     ("::1", "loopback"), ("fc00::1", "private"), ("fe80::1", "link-local"),
     ("ff02::1", "multicast"),
     ("::", "unspecified"), ("::ffff:10.0.0.1", "private (embeds 10.0.0.1)"),
     ("2002:7f00:1::", "loopback (embeds 127.0.0.1)"),
     ("64:ff9b::a9fe:a9fe", "link-local (embeds 169.254.169.254)")],
)
def test_refusal_reason_names_the_kind_of_address(address, reason):
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_not_refused(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_a_local_file_is_read(tmp_path: Path):
    poster = tmp_path / "1.jpg"
    poster.write_bytes(POSTER)
    assert fetch_bytes(str(poster), policy=FetchPolicy(), base_dir=str(tmp_path)) == POSTER


def test_a_missing_local_file_names_its_path(tmp_path: Path):
    missing = tmp_path / "404.jpg"
    assert str(missing) in str(_fails(str(missing), "fetch-not-found"))


def test_a_local_file_over_the_cap_is_refused(tmp_path: Path):
    poster = tmp_path / "big.jpg"
    poster.write_bytes(b"x" * 1001)
    _fails(str(poster), "fetch-too-large", policy=FetchPolicy(max_bytes=1000))


def test_a_local_file_outside_base_dir_is_refused_even_through_a_symlink(tmp_path: Path):
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    inside = tmp_path / "posters"
    inside.mkdir()
    (inside / "1.jpg").symlink_to(outside)
    _fails(str(inside / "1.jpg"), "fetch-path-escape", base_dir=str(inside))


@pytest.mark.parametrize("target", ["outside", "inside"])
def test_a_poster_swapped_for_a_symlink_after_checking_is_refused(tmp_path: Path, target: str):
    folder = tmp_path / "posters"
    folder.mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    (folder / "other.jpg").write_bytes(POSTER)
    poster = folder / "1.jpg"  # the real path the manifest reader stored
    poster.symlink_to(tmp_path / "secret.jpg" if target == "outside" else folder / "other.jpg")
    error = _fails(str(poster), "fetch-path-escape")
    assert "symbolic link" in str(error)


def test_a_folder_on_the_path_swapped_for_a_symlink_is_refused(tmp_path: Path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "1.jpg").write_bytes(b"secret")
    (tmp_path / "posters").symlink_to(tmp_path / "elsewhere")
    error = _fails(str(tmp_path / "posters" / "1.jpg"), "fetch-path-escape")
    assert str(tmp_path / "elsewhere" / "1.jpg") in str(error)


def test_a_fifo_or_a_folder_is_refused_without_hanging(tmp_path: Path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    _fails(str(fifo), "fetch-not-a-file")
    _fails(str(tmp_path), "fetch-not-a-file")


def test_the_policy_comes_from_the_settings():
    settings = Settings(fetch_allow=("minio", "10.0.0.0/8"), fetch_connect_timeout=1.5,
                        fetch_read_timeout=4.0, max_download_bytes=1234)
    policy = FetchPolicy.from_settings(settings)
    assert policy == FetchPolicy(allow=("minio", "10.0.0.0/8"), connect_timeout=1.5,
                                 read_timeout=4.0, max_bytes=1234)
    assert policy.deadline_seconds == 1.5 + 3 * 4.0


@pytest.mark.parametrize("bad", [{"connect_timeout": 0}, {"read_timeout": -1.0},
                                 {"max_bytes": 0}, {"max_redirects": -1},
                                 {"total_timeout": float("nan")}])
def test_a_policy_with_impossible_limits_is_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FetchPolicy(**bad)
