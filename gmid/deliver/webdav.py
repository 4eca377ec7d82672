"""Deliver to a WebDAV server (Nextcloud, ownCloud, Apache mod_dav, any other) with a PUT.

Each document goes to a name from the template below the configured URL; missing folders are
made with MKCOL. The PUT says `If-None-Match: *`, so it never replaces a file that is there. A
name taken gets a look (a retry looks before it sends): a file with the document's bytes is this
document, delivered before an interruption, and not sent again; a shorter file holding the
start of its bytes, and nothing else, is an upload of it cut short, completed (`If-Match` its
ETag); any other file is left alone and the document gets " (2)", " (3)"... TLS certificates
are verified (`ca_bundle` for a private CA); plain http only to this machine unless
`allow_http`. The password is a secret reference, read once.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from yaml.nodes import Node

from gmid.config.reader import Reader, is_null
from gmid.config.secretref import SecretRef, parse_secret
from gmid.deliver import naming
from gmid.deliver.base import Delivery, DeliveryFailed, reason
from gmid.errors import SecretError
from gmid.net import is_loopback

DEFAULT_NAME = "{path}"
MAX_COLLISIONS = 100
REQUEST_TIMEOUT = 60.0  # seconds one request may take at most (the attempt's deadline may cut it)
_PERMANENT = frozenset({400, 405, 413, 414, 415, 422})  # refused as it is
_USER_AGENT = "gmid (invoice collector)"


@dataclass(frozen=True)
class Options:
    """The server, the login and the names."""

    url: str  # a collection, ending in "/"
    file_name: str = DEFAULT_NAME
    username: str | None = None
    password: SecretRef | None = None
    auth: str = "basic"  # or "digest"
    ca_bundle: Path | None = None


def read_options(r: Reader, node: Node, option: str) -> Options:
    """Read a WebDAV destination's options."""
    keys = ("url", "file_name", "username", "password", "auth", "ca_bundle", "allow_http")
    m = r.mapping(node, option, keys)
    url = (r.text(m.get("url"), f"{option}.url") or "").strip()
    allow_http = r.boolean(m.get("allow_http"), f"{option}.allow_http", False)
    parts = urlsplit(url)
    if not url:
        r.problem(m.get("url", node), f"{option}.url", "needed: the folder's WebDAV URL")
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        r.problem(m["url"], f"{option}.url", "expected an http(s) URL, e.g. https://cloud/dav/")
    elif parts.username or parts.password:
        r.problem(m["url"], f"{option}.url", "no user name in the URL: use username: and password:")
    elif parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        r.problem(
            m["url"],
            f"{option}.url",
            "plain http to another machine sends documents and password in clear: use https "
            "(or allow_http: true)",
        )
    username = r.text(m.get("username"), f"{option}.username")
    password = parse_secret(r, m.get("password"), f"{option}.password")
    if (username is None) != (password is None):
        r.problem(node, option, "username: and password: go together")
    auth = (r.text(m.get("auth"), f"{option}.auth", "basic") or "").strip().lower()
    if auth not in ("basic", "digest"):
        r.problem(m.get("auth"), f"{option}.auth", "expected basic or digest")
    ca_bundle = r.path(m.get("ca_bundle"), f"{option}.ca_bundle")
    if ca_bundle is not None and not is_null(m.get("ca_bundle")) and not ca_bundle.is_file():
        r.problem(m["ca_bundle"], f"{option}.ca_bundle", f"{ca_bundle} is not a file")
    return Options(
        url=url if url.endswith("/") else url + "/",
        file_name=naming.read_template(r, m.get("file_name"), f"{option}.file_name", DEFAULT_NAME),
        username=username,
        password=password,
        auth=auth,
        ca_bundle=ca_bundle,
    )


def destination(name: str, options: Options) -> WebDavDestination:
    """The WebDAV destination of these options."""
    return WebDavDestination(name, options)


class WebDavDestination:
    """A folder on a WebDAV server."""

    def __init__(self, name: str, options: Options):
        self.name = name
        self.options = options
        self._local = threading.local()  # a requests.Session per thread
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._password: str | None = None
        self._folders: set[str] = set()  # made (or found) already

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = _USER_AGENT
            if self.options.username is not None:
                password = self._secret()
                session.auth = (
                    requests.auth.HTTPDigestAuth(self.options.username, password)
                    if self.options.auth == "digest"
                    else (self.options.username, password)
                )
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def _secret(self) -> str:
        with self._lock:
            if self._password is None:
                assert self.options.password is not None
                try:
                    self._password = self.options.password.resolve()
                except SecretError as e:
                    raise DeliveryFailed(f"the password: {e}") from None
            return self._password

    def deliver(self, item: Delivery, deadline: float) -> str:
        """PUT the document under its name, unless it is there already; return its URL."""
        data = item.read()
        *folders, name = naming.parts(self.options.file_name, item)
        base = self.options.url + "".join(quote(f, safe="") + "/" for f in folders)
        look = item.attempt > 1  # an earlier try may have sent it, or part of it
        n = 1
        for _ in range(2 * MAX_COLLISIONS):
            url = base + quote(naming.suffixed(name, n), safe="")
            if look:
                found, etag = self._look(url, data, item.sha256, deadline)
                if found == "same":
                    return url
                if found == "partial" and self._put(
                    url, data, {"If-Match": etag}, folders, deadline
                ):
                    return url
                if found != "free":
                    n += 1
                    continue
            if self._put(url, data, {"If-None-Match": "*"}, folders, deadline):
                return url
            look = True  # taken: by this document before, or by another file
        raise DeliveryFailed(f"too many files named like {name!r}", permanent=True)

    def _request(self, method: str, url: str, deadline: float, **kwargs) -> requests.Response:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeliveryFailed("did not finish in time")
        try:
            return self._session().request(
                method,
                url,
                timeout=min(left, REQUEST_TIMEOUT),
                allow_redirects=False,
                # Per request: a session's own would lose to $REQUESTS_CA_BUNDLE.
                verify=str(self.options.ca_bundle) if self.options.ca_bundle else True,
                **kwargs,
            )
        except requests.exceptions.SSLError as e:
            raise DeliveryFailed(f"TLS: {_cause(e)}") from None
        except requests.exceptions.Timeout:
            raise DeliveryFailed(f"{urlsplit(url).hostname} did not answer in time") from None
        except requests.RequestException as e:
            raise DeliveryFailed(f"cannot reach {urlsplit(url).hostname}: {_cause(e)}") from None

    def _put(
        self, url: str, data: bytes, condition: dict[str, str], folders: list[str], deadline: float
    ) -> bool:
        """PUT with a condition; False when the name is taken (412)."""
        answer = self._request("PUT", url, deadline, data=data, headers=condition)
        if answer.status_code == 409 and folders:  # a folder above it is missing
            self._make_folders(folders, deadline)
            answer = self._request("PUT", url, deadline, data=data, headers=condition)
        if answer.status_code in (200, 201, 204):
            return True
        if answer.status_code == 412:
            return False
        raise _failure(answer, "PUT")

    def _make_folders(self, folders: list[str], deadline: float) -> None:
        url = self.options.url
        for folder in folders:
            url += quote(folder, safe="") + "/"
            if url in self._folders:
                continue
            answer = self._request("MKCOL", url, deadline)
            # 405: it exists already (RFC 4918 9.3.1)
            if answer.status_code not in (200, 201, 405):
                raise _failure(answer, "MKCOL")
            self._folders.add(url)

    def _look(self, url: str, data: bytes, sha: str, deadline: float) -> tuple[str, str]:
        """What is at url: ("free"|"same"|"taken"|"partial", its ETag).

        "partial": a file holding the start of the document's bytes, and no more: an upload
        of this document cut short (by a crash, a lost connection), to be completed.
        """
        answer = self._request("HEAD", url, deadline)
        if answer.status_code == 404:
            return "free", ""
        if answer.status_code != 200:
            raise _failure(answer, "HEAD")
        etag = answer.headers.get("ETag", "")
        try:
            size = int(answer.headers.get("Content-Length", "-1"))
        except ValueError:
            size = -1
        if size > len(data) or (size != len(data) and not etag):
            return "taken", etag
        body = self._get(url, len(data) + 1, deadline)
        if body == data or (len(body) == len(data) and hashlib.sha256(body).hexdigest() == sha):
            return "same", etag
        if len(body) < len(data) and data.startswith(body):
            return "partial", etag  # this document's upload, cut short
        return "taken", etag

    def _get(self, url: str, limit: int, deadline: float) -> bytes:
        """The file's first `limit` bytes at most."""
        answer = self._request("GET", url, deadline, stream=True)
        with answer:
            if answer.status_code != 200:
                raise _failure(answer, "GET")
            body = bytearray()
            for chunk in answer.iter_content(65536):
                body += chunk
                if len(body) >= limit:
                    break
            return bytes(body[:limit])

    def close(self) -> None:
        """Close the connections."""
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()


def _cause(error: Exception) -> str:
    """The innermost reason of a requests error, without its URL or object addresses."""
    inner: object = error.args[0] if error.args else error
    inner = getattr(inner, "reason", inner)  # urllib3's MaxRetryError
    while isinstance(inner, Exception) and inner.args and isinstance(inner.args[0], Exception):
        inner = inner.args[0]
    if isinstance(inner, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {inner.verify_message}"
    return reason(re.sub(r"^<[^>]*>: ", "", str(inner)), 200)


def _failure(answer: requests.Response, method: str) -> DeliveryFailed:
    """A failure in the server's words: its status, and the first line of a short text body."""
    status = answer.status_code
    words = f"{method}: {status} {answer.reason or ''}".strip()
    kind = answer.headers.get("Content-Type", "")
    if kind.startswith(("text/plain", "application/xml", "text/xml")) and answer.content:
        first = answer.content[:2000].decode("utf-8", "replace").strip().splitlines()
        words += f": {first[0]}" if first else ""
    if status in (401, 403):
        words += " (check username and password)"
    retry_after = None
    if status in (429, 503):
        try:
            retry_after = float(answer.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
    return DeliveryFailed(reason(words), permanent=status in _PERMANENT, retry_after=retry_after)
