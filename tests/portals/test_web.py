"""The HTTP layer of portal runs, against real servers on loopback."""

from __future__ import annotations

import logging
import socket
import stat
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gmid.errors import (
    DownloadRejected,
    InsecureTransport,
    PortalChanged,
    PortalError,
    PortalUnavailable,
    RunTimeout,
)
from gmid.portals.web import HttpPolicy, check_document, make_browser, read_body, save_cookies
from tests.support.portal_http import page, redirect, serve

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
XML = b'<?xml version="1.0"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl"/>'
LOGIN_PAGE = b"<!DOCTYPE html><html><body><form><input name=password></form></body></html>"


def browser_for(**policy):
    # Without retries: each test sees the first answer (retries are tested on their own).
    return make_browser(HttpPolicy(**{"retries": 0, **policy}))


# --- transport rules -------------------------------------------------------------------------


def test_plain_http_to_loopback_is_allowed_with_the_policy_user_agent():
    with serve({("GET", "/"): page("<p>hello</p>")}) as portal:
        response = browser_for(user_agent="gmid-test/1").open(portal.url + "/")
    assert response.status_code == 200
    assert response.soup.p.text == "hello"
    assert portal.requests[0].headers["user-agent"] == "gmid-test/1"


def test_plain_http_elsewhere_is_refused_before_any_lookup(monkeypatch):
    lookups = []

    def no_dns(*args, **kwargs):
        lookups.append(args[0])
        raise socket.gaierror("no DNS in tests")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    browser = browser_for()
    with pytest.raises(InsecureTransport) as e:
        browser.open("http://user:hunter2@example.invalid/bills?token=s3cret")
    assert "http://example.invalid/bills" in str(e.value)
    assert "nothing was sent" in str(e.value)
    assert "hunter2" not in str(e.value) and "s3cret" not in str(e.value)
    # user info that looks like loopback does not fool the check
    with pytest.raises(InsecureTransport):
        browser.open("http://127.0.0.1@example.invalid/")
    assert lookups == []

    # with allow_http the request is attempted (and fails on the missing DNS here)
    with pytest.raises(PortalUnavailable, match="connection failed"):
        browser_for(allow_http=True).open("http://example.invalid/")
    assert lookups and lookups[0] == "example.invalid"


def test_a_form_posting_to_plain_http_elsewhere_is_refused():
    form = '<form method="post" action="http://example.invalid/steal"><input name="u"></form>'
    with serve({("GET", "/login"): page(form)}) as portal:
        browser = browser_for()
        browser.open(portal.url + "/login")
        browser.select_form()
        browser["u"] = "alice"
        with pytest.raises(InsecureTransport, match=r"example\.invalid/steal"):
            browser.submit_selected()


def test_redirect_from_https_to_http_is_not_followed():
    with (
        serve({("GET", "/bills"): page("<p>bills over http</p>")}) as plain,
        serve({("GET", "/"): redirect(plain.url + "/bills")}, tls=True) as portal,
    ):
        for allow_http in (False, True):  # a downgrade is never fine
            browser = browser_for(ca_bundle=portal.ca_file, allow_http=allow_http)
            with pytest.raises(InsecureTransport, match="redirected from https to http"):
                browser.open(portal.url + "/")

        # not following redirects gives the 302; sending its next request is refused
        session = browser_for(ca_bundle=portal.ca_file).session
        response = session.get(portal.url + "/", allow_redirects=False)
        assert response.status_code == 302
        with pytest.raises(InsecureTransport, match="redirected from https to http"):
            session.send(response.next)
    assert plain.requests == []


def test_redirect_to_another_host_over_https_is_followed():
    with (
        serve({("GET", "/bills"): page("<p>bills</p>")}, tls=True) as other,
        serve(
            {("GET", "/"): redirect(other.url.replace("localhost", "127.0.0.1") + "/bills")},
            tls=True,
        ) as portal,
    ):
        response = browser_for(ca_bundle=portal.ca_file).open(portal.url + "/")
    assert response.soup.p.text == "bills"
    assert response.url.startswith("https://127.0.0.1:")


# --- timeouts and unavailable portals --------------------------------------------------------


def test_a_portal_that_never_answers_times_out():
    with serve(silent=True) as portal:
        start = time.monotonic()
        with pytest.raises(PortalUnavailable, match=r"no answer within 0\.5 s"):
            browser_for(timeout=0.5).open(portal.url + "/")
        assert time.monotonic() - start < 3


def test_the_policy_timeout_applies_unless_the_caller_gives_one():
    with serve({("GET", "/"): page("slow")}, delay=1.0) as portal:
        browser = browser_for(timeout=0.3)
        with pytest.raises(PortalUnavailable):
            browser.open(portal.url + "/")
        assert browser.session.get(portal.url + "/", timeout=5).text == "slow"


def test_a_closed_port_is_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PortalUnavailable, match="connection failed"):
        browser_for().open(f"http://127.0.0.1:{port}/")


def test_429_and_5xx_raise_unavailable_with_retry_after():
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    routes = {
        ("GET", "/seconds"): lambda r: (429, {"Retry-After": "120"}, b"slow down"),
        ("GET", "/date"): lambda r: (429, {"Retry-After": in_a_minute}, b"slow down"),
        ("GET", "/down"): lambda r: (503, {}, b"maintenance"),
        ("GET", "/denied"): page("<p>wrong password</p>", status=401),
    }
    with serve(routes) as portal:
        browser = browser_for()
        with pytest.raises(PortalUnavailable, match="HTTP 429") as e:
            browser.open(portal.url + "/seconds")
        assert e.value.retry_after == 120
        with pytest.raises(PortalUnavailable) as e:
            browser.open(portal.url + "/date")
        assert 55 <= e.value.retry_after <= 61
        with pytest.raises(PortalUnavailable, match="HTTP 503") as e:
            browser.open(portal.url + "/down")
        assert e.value.retry_after is None
        # other 4xx are the connector's to read: login failures come as such pages
        response = browser.open(portal.url + "/denied")
        assert response.status_code == 401 and response.soup.p.text == "wrong password"


def test_a_get_is_retried_after_a_passing_failure_and_a_post_is_not():
    answers = iter([(503, {}, b"busy"), (429, {"Retry-After": "0"}, b"slow"), (200, {}, b"ok")])
    routes = {
        ("GET", "/list"): lambda r: next(answers),
        ("POST", "/login"): lambda r: (503, {}, b"busy"),
        ("GET", "/far"): lambda r: (429, {"Retry-After": "3600"}, b"tomorrow"),
    }
    with serve(routes) as portal:
        browser = make_browser(HttpPolicy(retries=2, backoff=0.05))
        assert browser.open(portal.url + "/list").text == "ok"
        with pytest.raises(PortalUnavailable, match="HTTP 503"):
            browser.session.post(portal.url + "/login", data={"p": "x"})
        with pytest.raises(PortalUnavailable) as e:
            browser.open(portal.url + "/far")  # a wait longer than max_retry_wait is not waited
        assert e.value.retry_after == 3600
        paths = [r.path for r in portal.requests]
    assert paths.count("/list") == 3 and paths.count("/login") == 1 and paths.count("/far") == 1


# --- TLS -------------------------------------------------------------------------------------


def test_tls_with_a_private_ca_needs_the_ca_bundle():
    with serve({("GET", "/"): page("<p>secure</p>")}, tls=True) as portal:
        with pytest.raises(PortalUnavailable) as e:
            browser_for().open(portal.url + "/")
        assert "certificate could not be verified" in str(e.value)
        assert "ca_bundle" in str(e.value)

        browser = browser_for(ca_bundle=portal.ca_file)
        assert browser.open(portal.url + "/").soup.p.text == "secure"

        # a caller cannot turn verification off
        with pytest.raises(PortalUnavailable, match="could not be verified"):
            browser_for().session.get(portal.url + "/", verify=False)


# --- downloads -------------------------------------------------------------------------------


def test_download_cap_by_content_length_and_by_streaming():
    body = b"x" * 2000
    routes = {
        ("GET", "/declared"): lambda r: (200, {}, body),
        ("GET", "/streamed"): lambda r: (200, {}, iter([body[:1000], body[1000:]])),
        ("GET", "/small"): lambda r: (200, {}, iter([PDF])),
    }
    with serve(routes) as portal:
        session = browser_for(max_download=1500).session
        with pytest.raises(DownloadRejected, match="2000 bytes is over the 1500 byte cap"):
            read_body(session.get(portal.url + "/declared", stream=True))
        response = session.get(portal.url + "/streamed", stream=True)
        assert "Content-Length" not in response.headers
        with pytest.raises(DownloadRejected, match="more than the 1500 byte cap"):
            read_body(response)
        assert read_body(session.get(portal.url + "/small", stream=True)) == PDF


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (PDF, "application/pdf", ("pdf", "application/pdf", ".pdf")),
        (PDF, "application/octet-stream", ("pdf", "application/pdf", ".pdf")),
        (PDF, None, ("pdf", "application/pdf", ".pdf")),
        (XML, "text/xml", ("xml", "application/xml", ".xml")),
        (PNG, "image/png", ("image", "image/png", ".png")),
    ],
)
def test_check_document_goes_by_the_bytes(data, content_type, expected):
    assert check_document(data, content_type) == expected


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (LOGIN_PAGE, "text/html; charset=utf-8", "HTML page instead of a document"),
        (LOGIN_PAGE, "application/pdf", "HTML page instead of a document"),
        (
            b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>',
            "application/octet-stream",
            "HTML page instead of a document",
        ),
        (b"\x00\x01garbage\xff" * 10, "application/pdf", "not a PDF, XML or image"),
        (b"", "application/pdf", "empty"),
    ],
)
def test_check_document_refuses_what_is_not_a_document(data, content_type, message):
    with pytest.raises(DownloadRejected, match=message):
        check_document(data, content_type)


def test_check_document_refuses_kinds_not_asked_for():
    with pytest.raises(DownloadRejected, match="an image, not a PDF"):
        check_document(PNG, "image/png", types=("pdf",))


# --- forms -----------------------------------------------------------------------------------


FILE_FORM = """<form method="post" action="/upload" enctype="multipart/form-data">
<input name="note" value="hi"><input type="file" name="doc" value="/etc/passwd">
<input type="submit"></form>"""
MULTIPART_LOGIN = """<form method="post" action="/login" enctype="multipart/form-data">
<input name="user"><input type="password" name="password"></form>"""


def test_a_form_with_a_file_input_uploads_nothing():
    ok = page("<p>ok</p>")
    routes = {("GET", "/"): page(FILE_FORM), ("POST", "/upload"): ok}
    with serve(routes) as portal:
        browser = browser_for()
        browser.open(portal.url + "/")
        browser.select_form()
        with pytest.raises(PortalError, match="gmid never uploads files"):
            browser.submit_selected()
    assert [(r.method, r.path) for r in portal.requests] == [("GET", "/")]


def test_a_multipart_form_without_file_inputs_is_submitted():
    routes = {("GET", "/"): page(MULTIPART_LOGIN), ("POST", "/login"): page("<p>welcome</p>")}
    with serve(routes) as portal:
        browser = browser_for()
        browser.open(portal.url + "/")
        browser.select_form()
        browser["user"], browser["password"] = "alice", "pw"
        assert browser.submit_selected().soup.p.text == "welcome"
    posted = portal.requests[-1]
    assert posted.headers["content-type"].startswith("multipart/form-data")
    assert b'name="user"\r\n\r\nalice' in posted.body
    assert b"filename=" not in posted.body


def test_nothing_secret_is_logged(caplog):
    form = '<form method="post" action="/login"><input type="password" name="password"></form>'

    def login(request):
        return 302, {"Location": "/home", "Set-Cookie": "sid=cookie-value-42; Path=/"}, b""

    routes = {("GET", "/"): page(form), ("POST", "/login"): login, ("GET", "/home"): page("ok")}
    caplog.set_level(logging.DEBUG)
    with serve(routes) as portal:
        browser = browser_for()
        browser.open(portal.url + "/?session=query-token")
        browser.select_form()
        browser["password"] = "hunter2-password"
        browser.submit_selected()
        browser.open(portal.url + "/home", headers={"Authorization": "Bearer auth-token-7"})
    assert portal.requests[-1].cookies == {"sid": "cookie-value-42"}
    logged = caplog.text
    assert "/login" in logged  # the requests are logged ...
    for secret in ("hunter2", "cookie-value-42", "query-token", "auth-token-7"):
        assert secret not in logged  # ... their secrets are not


# --- cookies ---------------------------------------------------------------------------------


def test_cookies_are_saved_owner_only_and_sent_by_the_next_browser(tmp_path):
    def login(request):
        cookies = [
            ("Set-Cookie", "sid=abc123; Path=/"),  # a session cookie: kept too
            ("Set-Cookie", "device=trusted; Path=/; Max-Age=86400"),
            ("Set-Cookie", "stale=1; Path=/; Max-Age=0"),
        ]
        return 200, [("Content-Type", "text/html"), *cookies], b"<p>in</p>"

    routes = {("GET", "/login"): login, ("GET", "/home"): page("<p>home</p>")}
    cookie_file = tmp_path / "state" / "sessions" / "telekom.cookies"
    with serve(routes) as portal:
        browser = make_browser(HttpPolicy(), cookie_file)
        browser.open(portal.url + "/login")
        save_cookies(browser, cookie_file)
        browser.close()

        assert stat.S_IMODE(cookie_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(cookie_file.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(cookie_file.parent.parent.stat().st_mode) == 0o700
        assert [p.name for p in cookie_file.parent.iterdir()] == ["telekom.cookies"]

        again = make_browser(HttpPolicy(), cookie_file)
        again.open(portal.url + "/home")
    assert portal.requests[-1].cookies == {"sid": "abc123", "device": "trusted"}


def test_a_corrupt_cookie_file_is_ignored_with_a_warning(tmp_path, caplog):
    cookie_file = tmp_path / "portal.cookies"
    cookie_file.write_text("#LWP-Cookies-2.0\nSet-Cookie3: sid=leaked-value; expires=\x00garbage\n")
    with serve({("GET", "/"): page("<p>fresh</p>")}) as portal:
        browser = make_browser(HttpPolicy(), cookie_file)
        assert browser.open(portal.url + "/").soup.p.text == "fresh"
    assert portal.requests[0].cookies == {}
    assert "could not be read" in caplog.text
    assert "leaked-value" not in caplog.text


# --- hostile portals: endless, inflating and dripping answers ---------------------------------


def _endless(chunk: bytes = b"<tr><td>x</td></tr>" * 1000):
    def answer(request):
        def body():
            for _ in range(10**6):  # ~19 GB, were it read whole
                yield chunk

        return 200, {"Content-Type": "text/html"}, body()

    return answer


def _drip(prefix: bytes = b"<html><body>", every: float = 0.1, count: int = 600):
    def answer(request):
        def body():
            yield prefix
            for _ in range(count):
                time.sleep(every)
                yield b" "

        return 200, {"Content-Type": "text/html"}, body()

    return answer


def test_an_endless_page_stops_at_the_page_cap():
    with serve({("GET", "/list"): _endless()}) as portal:
        browser = browser_for(max_page=200_000)
        start = time.monotonic()
        with pytest.raises(PortalChanged, match=r"larger than the 200000 byte cap.*runs\.max_page"):
            browser.open(portal.url + "/list")
        assert time.monotonic() - start < 5
        # JSON and plain requests go through the same cap
        with pytest.raises(PortalChanged, match=r"runs\.max_page"):
            browser.session.get(portal.url + "/list").json()


def test_a_page_declared_over_the_cap_is_not_read():
    with serve({("GET", "/big"): page("x" * 5000)}) as portal:
        with pytest.raises(PortalChanged, match=r"larger than the 4000 byte cap"):
            browser_for(max_page=4000).open(portal.url + "/big")
        assert browser_for(max_page=6000).open(portal.url + "/big").text == "x" * 5000


def test_a_gzip_bomb_stops_at_the_page_cap_counting_unpacked_bytes():
    import gzip

    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # ~200 kB, 200 MB unpacked
    headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
    with serve({("GET", "/"): lambda r: (200, headers, bomb)}) as portal:
        with pytest.raises(PortalChanged, match=r"1000000 byte cap"):
            browser_for(max_page=1_000_000).open(portal.url + "/")
        headers["Content-Length"] = "1"  # no help either way: the count is of unpacked bytes


def test_an_oversize_redirect_body_is_capped_too():
    routes = {
        ("GET", "/"): lambda r: (302, {"Location": "/end"}, iter([b"y" * 100_000] * 100)),
        ("GET", "/end"): page("end"),
    }
    with serve(routes) as portal, pytest.raises(PortalChanged, match=r"runs\.max_page"):
        browser_for(max_page=50_000).open(portal.url + "/")


def test_a_dripping_page_is_cut_off_at_the_request_timeout():
    with serve({("GET", "/list"): _drip()}) as portal:
        start = time.monotonic()
        with pytest.raises(PortalUnavailable, match=r"no answer within 1 s.*request_timeout"):
            browser_for(timeout=1.0).open(portal.url + "/list")
        assert time.monotonic() - start < 3


def test_a_dripping_download_is_cut_off_at_the_request_timeout():
    with serve({("GET", "/doc"): _drip(b"%PDF-1.7\n")}) as portal:
        response = browser_for(timeout=1.0).session.get(portal.url + "/doc", stream=True)
        start = time.monotonic()
        with pytest.raises(PortalUnavailable, match=r"no answer within 1 s"):
            read_body(response)
        assert time.monotonic() - start < 3


def test_dripping_headers_are_cut_off_at_the_request_timeout():
    def answer(handler_request):
        raise AssertionError("not used")

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def drip():
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(100):
                    time.sleep(0.1)
                    try:
                        conn.sendall(b"X")
                    except OSError:
                        return

        import threading

        thread = threading.Thread(target=drip, daemon=True)
        thread.start()
        start = time.monotonic()
        with pytest.raises(PortalUnavailable, match=r"no answer within 1 s"):
            browser_for(timeout=1.0).open(f"http://127.0.0.1:{port}/")
        assert time.monotonic() - start < 3
        thread.join(5)


def test_the_run_deadline_cuts_a_request_short_and_refuses_the_next():
    with serve({("GET", "/list"): _drip()}) as portal:
        browser = browser_for(timeout=30.0, deadline=time.monotonic() + 1, run_timeout=1)
        start = time.monotonic()
        with pytest.raises(RunTimeout, match=r"longer than 1 s \(runs\.run_timeout\)"):
            browser.open(portal.url + "/list")
        assert time.monotonic() - start < 3
        with pytest.raises(RunTimeout):
            browser.open(portal.url + "/list")
        assert len(portal.requests) == 1  # the second was not sent


def test_a_kept_alive_connection_outlives_the_deadline_of_an_earlier_request():
    with serve({("GET", "/"): page("<p>hi</p>")}) as portal:
        browser = browser_for(timeout=0.3)
        assert browser.open(portal.url + "/").soup.p.text == "hi"
        time.sleep(0.5)  # the first request's deadline has passed; its watch must be over
        assert browser.open(portal.url + "/").soup.p.text == "hi"
        streamed = browser.session.get(portal.url + "/", stream=True)
        assert read_body(streamed) == b"<p>hi</p>"
        time.sleep(0.5)
        assert browser.open(portal.url + "/").soup.p.text == "hi"
