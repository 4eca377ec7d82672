"""Cookies exported from a browser in the Netscape `cookies.txt` format, checked for one portal.

The format (browser extensions such as "Get cookies.txt LOCALLY", curl, yt-dlp): one cookie a
line, seven tab-separated fields (domain, include-subdomains flag, path, secure, expiry in
seconds since the epoch, name, value); `#` starts a comment, except `#HttpOnly_` which marks an
HttpOnly cookie's line; an expiry of 0 (or nothing) is a session cookie.

Everything here is pure: no file is written, nothing is logged. Cookie values are secrets: no
message, problem or description ever shows one, nor the text of a line that was not understood.
Reading the file, on the client's side, is gmid/control/cookiefile.py.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gmid.control.cookiefile import MAX_BYTES, CookieFileError

MAX_PROBLEMS = 20  # lines not understood that are listed one by one; the rest are counted
MAX_COOKIES = 1000  # for one portal (browsers keep about 180 per site)
MAX_LISTED = 20  # other sites and expired cookies named in a summary; the rest are counted
_LATEST = 253402300799  # 9999-12-31T23:59:59Z: later expiries are clamped to it
_HTTPONLY = "#HttpOnly_"
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_EXPIRY = re.compile(r"-?\d{1,20}(\.\d*)?")
_FLAGS = {"TRUE": True, "FALSE": False}


@dataclass(frozen=True)
class FileCookie:
    """One cookie of the file. `domain` is lowercase, without the leading dot."""

    line: int
    domain: str
    subdomains: bool  # sent to the domain's subdomains too (a leading dot, or the TRUE flag)
    path: str
    secure: bool
    expires: int | None  # seconds since the epoch; None: a session cookie
    name: str
    value: str = field(repr=False)
    http_only: bool = False

    @property
    def shown_domain(self) -> str:
        """The domain as browsers show it: `.example.com` for one that covers subdomains."""
        return f".{self.domain}" if self.subdomains else self.domain

    def sent_to(self, host: str) -> bool:
        """Tell whether a browser sends this cookie to `host` (RFC 6265 domain matching)."""
        host = _host(host)
        if host == self.domain:
            return True
        # An address has no subdomains; a one-label domain (`.com`) covers nothing but itself.
        return (
            self.subdomains
            and "." in self.domain
            and not _is_ip(host)
            and host.endswith("." + self.domain)
        )

    def to_cookiejar(self) -> http.cookiejar.Cookie:
        """The cookie as http.cookiejar (and so requests) keeps one set by the portal itself."""
        name, value = (self.name, self.value) if self.name else (self.value, None)
        dot = f".{self.domain}" if self.subdomains else self.domain
        return http.cookiejar.Cookie(
            version=0,
            name=name,
            value=value,
            port=None,
            port_specified=False,
            domain=dot,
            domain_specified=self.subdomains,
            domain_initial_dot=self.subdomains,
            path=self.path,
            path_specified=True,
            secure=self.secure,
            expires=self.expires,
            discard=self.expires is None,
            comment=None,
            comment_url=None,
            rest={"HttpOnly": None} if self.http_only else {},
        )


@dataclass(frozen=True)
class Parsed:
    """What a file holds: its cookies and, by line number, what was not understood."""

    cookies: list[FileCookie]
    problems: list[str]  # "line 7: ...", at most MAX_PROBLEMS, then "... more"
    bad_lines: int


@dataclass(frozen=True)
class Selection:
    """The cookies of a file that belong to a portal, and what was dropped."""

    kept: list[FileCookie]
    hosts: list[str]  # the portal's hosts
    other_domains: dict[str, int]  # domain -> cookies dropped, for other sites
    expired: list[FileCookie]  # the portal's cookies that have expired
    problems: list[str]
    bad_lines: int

    def summary(self) -> dict[str, Any]:
        """What the import did, for answers and messages: names and domains, never values."""
        return {
            "imported": len(self.kept),
            "hosts": self.hosts,
            "cookies": [describe(c) for c in self.kept],
            "other_domains": dict(list(self.other_domains.items())[:MAX_LISTED]),
            "dropped_other": sum(self.other_domains.values()),
            "expired": [c.name or "(no name)" for c in self.expired[:MAX_LISTED]],
            "dropped_expired": len(self.expired),
            "problems": self.problems,
            "bad_lines": self.bad_lines,
        }


def describe(cookie: FileCookie | http.cookiejar.Cookie) -> dict[str, Any]:
    """A cookie without its value: name, domain, path, expiry, flags."""
    if isinstance(cookie, FileCookie):
        cookie = cookie.to_cookiejar()
    http_only = cookie.has_nonstandard_attr("HttpOnly") or cookie.has_nonstandard_attr("httponly")
    return {
        "name": cookie.name if cookie.value is not None else "(no name)",
        "domain": cookie.domain,
        "path": cookie.path,
        "expires": cookie.expires,  # None: ends with the browser session
        "secure": bool(cookie.secure),
        "http_only": bool(http_only),
    }


def parse(text: str) -> Parsed:
    """Read every cookie of a cookies.txt text; lines not understood are reported by number."""
    if len(text) > MAX_BYTES:
        raise CookieFileError(f"the file is larger than {MAX_BYTES // 1024} KB")
    text = text.removeprefix("\ufeff")
    first = text.lstrip()[:20]
    if first.startswith(("[", "{")):
        raise CookieFileError(
            "this is a JSON export, not cookies.txt: export in the Netscape (cookies.txt) format"
        )
    if first.startswith("#LWP-Cookies"):
        raise CookieFileError("this is an LWP cookie file, not cookies.txt (Netscape format)")
    cookies: dict[tuple[str, str, str], FileCookie] = {}  # the last one of a name wins
    problems: list[str] = []
    bad = 0
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        try:
            cookie = _line(number, line)
        except ValueError as e:
            bad += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {number}: {e}")
            continue
        if cookie is not None:
            cookies[(cookie.domain, cookie.path, cookie.name)] = cookie
    if bad > len(problems):
        problems.append(f"... and {bad - len(problems)} more lines not understood")
    return Parsed(list(cookies.values()), problems, bad)


def _line(number: int, line: str) -> FileCookie | None:
    """One line: a cookie, None for a comment or a blank line; ValueError says what is wrong."""
    http_only = line.startswith(_HTTPONLY)
    if http_only:
        line = line[len(_HTTPONLY) :]
    elif line.lstrip().startswith("#") or not line.strip():
        return None
    fields = line.split("\t")
    if len(fields) == 6:
        fields.append("")  # an empty value, its tab left out (as some exporters do)
    if len(fields) != 7:
        words = line.split()
        if len(words) in (6, 7) and {words[1].upper(), words[3].upper()} <= set(_FLAGS):
            raise ValueError("fields separated by spaces, not tabs (was it copied by hand?)")
        raise ValueError(f"expected 7 tab-separated fields, found {len(fields)}")
    domain, flag, path, secure, expires, name, value = fields
    domain = domain.strip().lower()
    subdomains = domain.startswith(".")
    domain = _host(domain.lstrip("."))
    if not domain or not (_HOST.fullmatch(domain) or _is_ip(domain)):
        raise ValueError("the domain is not a host name")
    if flag.strip().upper() not in _FLAGS or secure.strip().upper() not in _FLAGS:
        raise ValueError("the include-subdomains and secure fields must be TRUE or FALSE")
    if not path.startswith("/"):
        raise ValueError("the path must start with /")
    if not _sendable(path) or not _sendable(name, "=") or not _sendable(value):
        raise ValueError(
            "the path, name or value has characters a browser does not send "
            "(control characters, ';', non-ASCII)"
        )
    expires = expires.strip()
    if expires and not _EXPIRY.fullmatch(expires):
        raise ValueError("the expiry is not a number of seconds")
    when = int(float(expires)) if expires else 0
    return FileCookie(
        line=number,
        domain=domain,
        subdomains=(subdomains or _FLAGS[flag.strip().upper()]) and not _is_ip(domain),
        path=path,
        secure=_FLAGS[secure.strip().upper()],
        expires=None if when == 0 else min(when, _LATEST),
        name=name,
        value=value,
        http_only=http_only,
    )


def _sendable(text: str, forbidden: str = "") -> bool:
    return all(" " <= c <= "~" and c != ";" and c not in forbidden for c in text)


def select(parsed: Parsed, hosts: Iterable[str], now: float) -> Selection:
    """Keep the cookies a browser would send to one of the portal's hosts, and not expired.

    CookieFileError when none is left: no cookie for the portal (the domains found are named),
    all of them expired, or nothing readable at all.
    """
    hosts = sorted({_host(h) for h in hosts if h})
    if not hosts:
        raise CookieFileError(
            "the portal's description names no URL, so gmid cannot tell which cookies are its own"
        )
    kept, expired = [], []
    others: Counter[str] = Counter()
    for cookie in parsed.cookies:
        if not any(cookie.sent_to(host) for host in hosts):
            others[cookie.shown_domain] += 1
        elif cookie.expires is not None and cookie.expires <= now:
            expired.append(cookie)
        else:
            kept.append(cookie)
    expected = " or ".join(hosts)
    if not parsed.cookies:
        why = "no cookie could be read" if parsed.bad_lines else "the file holds no cookie"
        raise CookieFileError(
            f"{why}: is it a cookies.txt (Netscape format) export?", parsed.problems
        )
    if not kept and not expired:
        found = ", ".join(f"{d} ({n})" for d, n in others.most_common(10))
        more = f" and {len(others) - 10} more" if len(others) > 10 else ""
        raise CookieFileError(
            f"the file has no cookie for {expected}, the portal's site; it has cookies for "
            f"{found}{more}. Export the cookies while the portal's site is open in the browser",
            parsed.problems,
        )
    if len(kept) > MAX_COOKIES:
        raise CookieFileError(
            f"the file has {len(kept)} cookies for {expected}, more than {MAX_COOKIES}: "
            "not a browser's export"
        )
    if not kept:
        raise CookieFileError(
            f"every cookie for {expected} in the file has expired ({len(expired)}): log in to "
            "the portal in the browser and export the cookies again",
            parsed.problems,
        )
    return Selection(
        kept=kept,
        hosts=hosts,
        other_domains=dict(others.most_common()),
        expired=expired,
        problems=parsed.problems,
        bad_lines=parsed.bad_lines,
    )


def portal_hosts(options: Mapping[str, Any]) -> list[str]:
    """The hosts a portal's description (form or connector options) names in its URLs."""
    hosts: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")):
            try:
                host = urlsplit(value.strip()).hostname
            except ValueError:
                return
            if host:
                hosts.add(_host(host))

    walk(options)
    return sorted(hosts)


def _host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
