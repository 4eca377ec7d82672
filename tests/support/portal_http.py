"""A tiny HTTP(S) server on loopback, for tests that need a real portal to talk to.

    def login(request):
        if request.form().get("password") == ["secret"]:
            return 302, {"Location": "/invoices", "Set-Cookie": "sid=1; Path=/"}, b""
        return 401, {"Content-Type": "text/html"}, "<p>Wrong password</p>"

    with serve({("POST", "/login"): login, ("GET", "/"): page("<form>...</form>")}) as portal:
        browser.open(portal.url + "/")
        ...
        assert [r.path for r in portal.requests] == ["/", "/login"]

A handler takes a `Request` and returns `(status, headers, body)`: headers a dict, or a list of
pairs to repeat a header (several Set-Cookie); body bytes or str (sent as UTF-8) with a
Content-Length, or an iterator of bytes, streamed without Content-Length (the connection is
closed at the end). Routes match on method and path without the query; an unknown route gets a
404. Instead of a dict, `serve` also takes one callable that answers every request.

`serve(..., tls=True)` serves https://localhost:PORT with a certificate from a throwaway CA
(made once per test process with the openssl command); `.ca_file` is that CA, for a ca_bundle.
`silent=True` accepts connections and never answers (timeout tests); `delay=` waits that long
before each answer (slow portals).
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, dict[str, str] | list[tuple[str, str]], bytes | str | Iterable[bytes]]
Handler = Callable[["Request"], Reply]


@dataclass
class Request:
    """One request as the server received it; header names are lower-cased."""

    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def form(self) -> dict[str, list[str]]:
        """The body parsed as an urlencoded form."""
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the client sent."""
        pairs = (p.strip().partition("=") for p in self.headers.get("cookie", "").split(";"))
        return {name: value for name, _, value in pairs if name}


@dataclass
class Portal:
    """A running server: where it is and what it received."""

    url: str
    requests: list[Request]
    ca_file: Path | None


def page(body: str | bytes, status: int = 200, content_type: str = "text/html; charset=utf-8"):
    """A handler that always answers the same page."""
    return lambda request: (status, {"Content-Type": content_type}, body)


def redirect(location: str, status: int = 302):
    """A handler that redirects to `location`."""
    return lambda request: (status, {"Location": location}, b"")


@contextlib.contextmanager
def serve(
    routes: dict[tuple[str, str], Handler] | Handler | None = None,
    *,
    tls: bool = False,
    silent: bool = False,
    delay: float = 0.0,
) -> Iterator[Portal]:
    """Run a server on 127.0.0.1 in a daemon thread for the duration of the `with` block."""
    received: list[Request] = []
    stop = threading.Event()
    context = _server_context() if tls else None

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30  # a kept-alive connection nobody reuses does not hold its thread forever

        def handle(self):
            if silent:
                stop.wait()  # the connection is open; no byte is ever read or written
                return
            super().handle()

        def log_message(self, format, *args):
            pass

        def _answer(self):
            target = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                method=self.command,
                path=target.path,
                query=parse_qs(target.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            received.append(request)
            if delay:
                time.sleep(delay)
            handler = (
                routes if callable(routes) else (routes or {}).get((self.command, target.path))
            )
            if handler is None:
                status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
            else:
                status, headers, body = handler(request)
            self._send(status, headers, body)

        def _send(self, status, headers, body):
            self.send_response(status)
            pairs = headers.items() if isinstance(headers, dict) else headers
            for name, value in pairs:
                self.send_header(name, value)
            if isinstance(body, str):
                body = body.encode("utf-8")
            if isinstance(body, bytes | bytearray):
                if not any(name.lower() == "content-length" for name, _ in pairs):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            self.send_header("Connection", "close")  # the end of the body is the end of the stream
            self.close_connection = True
            self.end_headers()
            for chunk in body:
                self.wfile.write(chunk)
                self.wfile.flush()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _answer

    class _Server(ThreadingHTTPServer):
        daemon_threads = True

        def finish_request(self, request, client_address):
            if context is not None:  # the handshake runs in the connection's own thread
                try:
                    request = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate: what TLS tests look for
                try:
                    super().finish_request(request, client_address)
                finally:
                    request.close()  # the wrapped socket: its close is the end of a stream
                return
            super().finish_request(request, client_address)

        def handle_error(self, request, client_address):
            if not stop.is_set():
                super().handle_error(request, client_address)

    server = _Server(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    # A short poll interval: shutdown() waits for it, once per test portal.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name=f"portal:{port}", daemon=True
    )
    thread.start()
    try:
        yield Portal(
            url=f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}",
            requests=received,
            ca_file=_certificates()[0] if tls else None,
        )
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = gmid test CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
_certs: tuple[Path, Path, Path] | None = None
_certs_lock = threading.Lock()


def _certificates() -> tuple[Path, Path, Path]:
    """Make (once per process) a throwaway CA and a server certificate for localhost."""
    global _certs
    with _certs_lock:
        if _certs is None:
            openssl = shutil.which("openssl")
            if openssl is None:
                raise RuntimeError("the TLS test server needs the openssl command")
            d = Path(tempfile.mkdtemp(prefix="gmid-test-ca-"))
            (d / "openssl.cnf").write_text(_OPENSSL_CONFIG)
            key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -config openssl.cnf"
            for command in (
                f"req -x509 -extensions ca {key} -keyout ca.key -out ca.pem -days 2",
                f"req -new {key} -keyout server.key -out server.csr -subj /CN=localhost",
                "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
                " -out server.pem -extfile openssl.cnf -extensions server",
            ):
                subprocess.run([openssl, *command.split()], cwd=d, check=True, capture_output=True)
            atexit.register(shutil.rmtree, d, ignore_errors=True)
            _certs = (d / "ca.pem", d / "server.pem", d / "server.key")
        return _certs


def _server_context() -> ssl.SSLContext:
    _, cert, key = _certificates()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
