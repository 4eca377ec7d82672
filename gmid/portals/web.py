"""HTTP for portal runs: one requests session per run, with gmid's safety rules built in.

Every rule lives in `PortalSession.send` and `prepare_request`, the two places each request a
connector makes goes through (mechanicalsoup's form submissions and requests' redirects too):
a timeout always, TLS verification always, plain http only to loopback (or when allowed), no
https-to-http redirect ever, no file upload ever, and 429/5xx/network failures as
PortalUnavailable. URLs in messages and logs lose their user info and query (tokens live there).
"""

from __future__ import annotations

import http.cookiejar
import logging
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import mechanicalsoup
import requests
from urllib3.util import parse_url

from connectors.form.html import SOUP_CONFIG
from gmid.archive.fs import make_dir, write_atomic
from gmid.archive.sniff import MEDIA, sniff
from gmid.errors import DownloadRejected, InsecureTransport, PortalError, PortalUnavailable
from gmid.net import is_loopback
from gmid.portals.guard import GuardedAdapter
from gmid.portals.guard import shown_url as _show
from gmid.portals.halt import Halt

logger = logging.getLogger(__name__)
# urllib3's debug lines carry whole URLs, query tokens included; ours (above) leave them out.
logging.getLogger("urllib3").setLevel(logging.INFO)

DEFAULT_MAX_DOWNLOAD = 50 * 10**6
DEFAULT_MAX_PAGE = 10 * 10**6
_KIND_NAMES = {"pdf": "a PDF", "xml": "an XML file", "image": "an image"}


@dataclass(frozen=True)
class HttpPolicy:
    """The safety settings of one portal's runs."""

    timeout: float = 30.0  # per request, always applied: to each read and to the whole answer
    allow_http: bool = False  # plain http to non-loopback hosts; a downgrade is refused anyway
    ca_bundle: Path | None = None  # TLS verification is always on; this only swaps the CA file
    max_download: int = DEFAULT_MAX_DOWNLOAD  # body cap of read_body() (and of any stream)
    max_page: int = DEFAULT_MAX_PAGE  # body cap of a page (a request without stream=True)
    deadline: float | None = None  # the run's end (time.monotonic()): no request outlives it
    run_timeout: float | None = None  # the run's length, for the message at its deadline
    halt: Halt | None = None  # the daemon's stop: ends requests under way, refuses new ones
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) gmid/0.1"
    retries: int = 2  # of a GET or HEAD that met 429, 5xx or a network error; never of a POST
    backoff: float = 2.0  # seconds before the first retry, doubled for each next one
    max_retry_wait: float = 30.0  # a longer Retry-After ends the run instead (retried later)


class PortalSession(requests.Session):
    """A requests session that enforces an HttpPolicy on every request it sends."""

    def __init__(self, policy: HttpPolicy):
        super().__init__()
        self.policy = policy
        self.gmid_max_download = policy.max_download
        self.verify = str(policy.ca_bundle) if policy.ca_bundle else True
        adapter = GuardedAdapter(policy)  # the deadline of each answer, the cap of each body
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Prepare a request, refusing any that would upload a file."""
        # mechanicalsoup passes an empty but truthy dict to force multipart encoding of a form
        # without file inputs: that uploads nothing, so only a non-empty `files` is refused.
        if request.files is not None and len(request.files):
            raise PortalError("the portal's form wants a file upload; gmid never uploads files")
        return super().prepare_request(request)

    def rebuild_auth(self, prepared_request, response) -> None:
        """Strip credentials as requests does, and note where a redirect came from."""
        super().rebuild_auth(prepared_request, response)
        # send() refuses a downgrade; the mark also covers Response.next (allow_redirects=False)
        prepared_request.gmid_redirected_from = response.url

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        """Send one request under the policy, retrying a GET that met a passing failure."""
        retries = self.policy.retries if request.method in ("GET", "HEAD") else 0
        for attempt in range(retries + 1):
            try:
                return self._send_once(request, **kwargs)
            except PortalUnavailable as e:
                wait = self.policy.backoff * 2**attempt if e.retry_after is None else e.retry_after
                if attempt == retries or wait > self.policy.max_retry_wait:
                    raise
                if (
                    self.policy.deadline is not None
                    and time.monotonic() + wait >= self.policy.deadline
                ):
                    raise  # the run ends before the retry would start
                logger.info("%s; retrying in %g s", e, wait)
                if self.policy.halt is None:
                    time.sleep(wait)
                elif self.policy.halt.event.wait(wait):
                    raise  # the daemon stops: no retry

        raise AssertionError("unreachable")

    def _send_once(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        """Send one request under the policy; raise the typed error of whatever went wrong."""
        _check_url(request, self.policy)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.policy.timeout
        kwargs["verify"] = self.verify  # neither a caller nor REQUESTS_CA_BUNDLE turns it off
        where = _show(request.url)
        try:
            response = super().send(request, **kwargs)
        except requests.exceptions.SSLError as e:
            raise PortalUnavailable(_tls_message(where, e, self.policy)) from e
        except requests.exceptions.Timeout as e:
            limit = kwargs["timeout"]  # the caller's, when it gave one
            limit = f"{limit:g} s" if isinstance(limit, int | float) else f"{limit} s"
            raise PortalUnavailable(f"{where}: no answer within {limit} (timeout)") from e
        except requests.exceptions.TooManyRedirects as e:
            raise PortalUnavailable(f"{where}: too many redirects") from e
        except requests.exceptions.RequestException as e:
            raise PortalUnavailable(f"{where}: {_reason(e)}") from e
        response.gmid_session = self
        # with redirects followed, the hops log themselves (they go through send too)
        first = response.history[0] if response.history else response
        logger.debug("%s %s -> %s", request.method, where, first.status_code)
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            later = f", retry after {retry_after:g} s" if retry_after is not None else ""
            answer = f"HTTP {status} {response.reason}{later}"
            raise PortalUnavailable(
                f"{_show(response.url)}: the portal answered {answer}",
                retry_after=retry_after,
            )
        return response


def make_browser(
    policy: HttpPolicy, cookie_file: Path | None = None
) -> mechanicalsoup.StatefulBrowser:
    """Make a browser on a PortalSession, with the cookies saved in `cookie_file`, if any."""
    session = PortalSession(policy)
    if cookie_file is not None and cookie_file.exists():
        try:
            cookies = read_cookies(cookie_file)
        except (OSError, ValueError) as e:
            logger.warning(
                "cookie file %s could not be read (%s); going on without the saved session",
                cookie_file,
                type(e).__name__,
            )
        else:
            for cookie in cookies:
                session.cookies.set_cookie(cookie)
    # Pages are parsed as a browser parses them (HTML5), so copied selectors match.
    return mechanicalsoup.StatefulBrowser(
        session=session, soup_config=SOUP_CONFIG, user_agent=policy.user_agent
    )


def read_cookies(cookie_file: Path, *, ignore_expires: bool = False) -> list[http.cookiejar.Cookie]:
    """The cookies of a session file (session cookies too); expired ones only if asked."""
    jar = http.cookiejar.LWPCookieJar()
    # The stdlib warns with a traceback and raises with the bad line: cookie values.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jar.load(str(cookie_file), ignore_discard=True, ignore_expires=ignore_expires)
    return list(jar)


def save_cookies(browser: mechanicalsoup.Browser, cookie_file: Path) -> None:
    """Write every cookie of the browser, session cookies too, atomically and owner-only."""
    write_cookies(browser.session.cookies, cookie_file)


def write_cookies(cookies: Iterable[http.cookiejar.Cookie], cookie_file: Path) -> None:
    """Write cookies as a portal's session file (LWP format), atomically and owner-only.

    The runner loads this file before a run and writes it back after; `gmid session import`
    writes it from a browser's cookies.
    """
    jar = http.cookiejar.LWPCookieJar()
    for cookie in cookies:
        jar.set_cookie(cookie)
    text = "#LWP-Cookies-2.0\n" + jar.as_lwp_str(ignore_discard=True, ignore_expires=False)
    make_dir(cookie_file.parent, 0o700)
    write_atomic(cookie_file, text.encode("utf-8"), 0o600, replace=True)


def read_body(response) -> bytes:
    """Read a (streamed) response body, refusing more than the session's download cap.

    The cap is the `gmid_max_download` attribute of the requests session that made the
    request (DEFAULT_MAX_DOWNLOAD when absent).
    """
    session = getattr(response, "gmid_session", None)
    cap = getattr(session, "gmid_max_download", DEFAULT_MAX_DOWNLOAD)
    where = _show(response.url)
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        response.close()
        raise DownloadRejected(f"{where}: {declared} bytes is over the {cap} byte cap")
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(1 << 16):
            size += len(chunk)
            if size > cap:
                response.close()
                raise DownloadRejected(f"{where}: more than the {cap} byte cap")
            chunks.append(chunk)
    except requests.exceptions.RequestException as e:  # a stalled or cut transfer
        response.close()
        raise PortalUnavailable(f"{where}: the download broke off ({type(e).__name__})") from e
    return b"".join(chunks)


def check_document(
    data: bytes, content_type: str | None, types=("pdf", "xml", "image")
) -> tuple[str, str, str]:
    """Tell what a downloaded document is, as (kind, media type, ".ext"), from its bytes.

    The Content-Type only helps name a refusal: portals often send PDFs as octet-stream, and
    an HTML page where a document was expected is usually the login page of an expired session.
    """
    declared = (content_type or "").split(";")[0].strip().lower() or "no content type"
    if not data:
        raise DownloadRejected("the download is empty")
    sniffed = sniff(data)
    html = _looks_like_html(data) or declared in ("text/html", "application/xhtml+xml")
    if sniffed is None or (sniffed == "xml" and html):
        if html:
            raise DownloadRejected("the portal sent an HTML page instead of a document")
        raise DownloadRejected(f"the download is not a PDF, XML or image ({declared})")
    kind, media_type, ext = MEDIA[sniffed]
    if kind not in types:
        wanted = " or ".join(_KIND_NAMES.get(t, t) for t in types)
        raise DownloadRejected(f"the download is {_KIND_NAMES[kind]}, not {wanted}")
    return kind, media_type, ext


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date) as seconds from now, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _check_url(request: requests.PreparedRequest, policy: HttpPolicy) -> None:
    # parse_url is what urllib3 connects by, so the host checked is the host contacted
    url = parse_url(request.url)
    scheme, host = (url.scheme or "").lower(), url.host or ""
    origin = getattr(request, "gmid_redirected_from", None)
    if origin and scheme == "http" and (parse_url(origin).scheme or "").lower() == "https":
        raise InsecureTransport(
            f"{_show(origin)} redirected from https to http ({_show(request.url)}): not followed"
        )
    if scheme == "https" or (scheme == "http" and (is_loopback(host) or policy.allow_http)):
        return
    raise InsecureTransport(
        f"{_show(request.url)}: only https is allowed (plain http only to this machine, or "
        "with allow_http); nothing was sent"
    )


def _reason(e: Exception) -> str:
    if isinstance(e, requests.exceptions.ConnectionError):
        return "the connection failed (refused, reset, or the name did not resolve)"
    return type(e).__name__


def _tls_message(where: str, e: Exception, policy: HttpPolicy) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e):
        ca = f"the CA file {policy.ca_bundle}" if policy.ca_bundle else "the system's CAs"
        return (
            f"{where}: the portal's TLS certificate could not be verified against {ca}; "
            "if the portal uses a private CA, set the portal's ca_bundle to that CA's file"
        )
    return f"{where}: the TLS handshake failed ({type(e).__name__})"


def _looks_like_html(data: bytes) -> bool:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head
