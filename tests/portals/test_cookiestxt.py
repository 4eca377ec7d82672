"""gmid.portals.cookiestxt: cookies.txt (Netscape format) as browsers export it, and worse."""

from __future__ import annotations

import os
import stat
import time

import pytest
import requests

from gmid.control import cookiefile
from gmid.portals import cookiestxt as ct
from gmid.portals.web import read_cookies, write_cookies

NOW = 1_800_000_000
LATER = NOW + 86400
SECRET = "s3cr3t-VALUE"

# As "Get cookies.txt LOCALLY" writes it: header, comments, #HttpOnly_ lines, CRLF, 0 = session.
BROWSER = "\r\n".join(
    [
        "# Netscape HTTP Cookie File",
        "# http://curl.haxx.se/rfc/cookie_spec.html",
        "# This is a generated file!  Do not edit.",
        "",
        f"#HttpOnly_.example.com\tTRUE\t/\tTRUE\t{LATER}\tsession\t{SECRET}",
        "www.example.com\tFALSE\t/account\tTRUE\t0\tcsrf\tabc",
        f".example.com\tTRUE\t/\tFALSE\t{NOW - 1}\told\tgone",
        f".tracker.net\tTRUE\t/\tFALSE\t{LATER}\t_ga\tGA1.2",
        f"login.example.com\tFALSE\t/\tTRUE\t{LATER}\tsso\tx",
        "",
    ]
)


def test_a_browser_export_keeps_what_the_portals_host_gets():
    parsed = ct.parse(BROWSER)
    assert parsed.problems == [] and len(parsed.cookies) == 5
    chosen = ct.select(parsed, ["www.example.com"], NOW)
    assert [c.name for c in chosen.kept] == ["session", "csrf"]
    first = chosen.kept[0]
    assert (first.domain, first.subdomains, first.secure, first.http_only) == (
        "example.com",
        True,
        True,
        True,
    )
    assert first.expires == LATER and chosen.kept[1].expires is None  # 0: a session cookie
    # login.example.com is a sibling: a browser does not send its cookie to www.
    assert chosen.other_domains == {".tracker.net": 1, "login.example.com": 1}
    assert [c.name for c in chosen.expired] == ["old"]
    summary = chosen.summary()
    assert summary["imported"] == 2 and summary["expired"] == ["old"]
    assert SECRET not in repr(summary) and SECRET not in repr(chosen)


def test_every_host_of_the_description_counts():
    hosts = ct.portal_hosts(
        {
            "start": "https://login.example.com/signin?next=/",
            "documents": {"pages": ["/invoices", "https://WWW.example.com./list"]},
            "api": [{"url": "https://[::1]:8443/x"}],
            "note": "not a url https://nope.example.org",  # only values that are URLs
            "timeout": 3,
        }
    )
    assert hosts == ["::1", "login.example.com", "www.example.com"]
    kept = ct.select(ct.parse(BROWSER), hosts, NOW).kept
    assert {c.name for c in kept} == {"session", "csrf", "sso"}


def test_an_address_is_matched_exactly():
    text = (
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t1\n"
        ".127.0.0.1\tTRUE\t/\tFALSE\t0\tdotted\t2\n"  # an address has no subdomains
        ".0.0.1\tTRUE\t/\tFALSE\t0\tsuffix\t3\n"
        "127.0.0.10\tFALSE\t/\tFALSE\t0\tother\t4\n"
    )
    chosen = ct.select(ct.parse(text), ["127.0.0.1"], NOW)
    assert [c.name for c in chosen.kept] == ["sid", "dotted"]
    assert chosen.other_domains == {".0.0.1": 1, "127.0.0.10": 1}


def test_a_top_level_domain_cookie_covers_nothing_else():
    text = ".com\tTRUE\t/\tFALSE\t0\twide\t1\nexample.com\tTRUE\t/\tFALSE\t0\tflag\t2\n"
    chosen = ct.select(ct.parse(text), ["www.example.com"], NOW)
    assert [c.name for c in chosen.kept] == ["flag"]  # TRUE without a dot covers subdomains too


def test_another_sites_cookies_are_refused_naming_what_was_found():
    text = "\n".join(
        [f".other.org\tTRUE\t/\tFALSE\t0\tc{i}\t{SECRET}" for i in range(3)]
        + [f"shop.example.net\tFALSE\t/\tFALSE\t0\tx\t{SECRET}"]
    )
    with pytest.raises(ct.CookieFileError) as e:
        ct.select(ct.parse(text), ["portal.example.com"], NOW)
    message = str(e.value)
    assert "no cookie for portal.example.com" in message
    assert ".other.org (3), shop.example.net (1)" in message
    assert SECRET not in message


def test_only_expired_cookies_are_refused():
    text = f".example.com\tTRUE\t/\tFALSE\t{NOW - 10}\tsid\tx\n"
    with pytest.raises(ct.CookieFileError, match=r"every cookie for www\.example\.com .* expired"):
        ct.select(ct.parse(text), ["www.example.com"], NOW)


def test_a_description_without_urls_cannot_tell_its_cookies():
    with pytest.raises(ct.CookieFileError, match="names no URL"):
        ct.select(ct.parse(BROWSER), ct.portal_hosts({"account": "x"}), NOW)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("example.com\tTRUE\t/\tFALSE\t0", "expected 7 tab-separated fields, found 5"),
        ("example.com TRUE / FALSE 0 sid " + SECRET, "separated by spaces, not tabs"),
        ("example.com\tYES\t/\tFALSE\t0\tsid\t" + SECRET, "TRUE or FALSE"),
        ("example.com\tTRUE\tabc\tFALSE\t0\tsid\t" + SECRET, "path must start with /"),
        ("example.com\tTRUE\t/\tFALSE\tnever\tsid\t" + SECRET, "expiry is not a number"),
        ("exa mple.com\tTRUE\t/\tFALSE\t0\tsid\t" + SECRET, "domain is not a host name"),
        ("example.com\tTRUE\t/\tFALSE\t0\tsid\t" + SECRET + ";x=1", "characters a browser"),
        ("example.com\tTRUE\t/\tFALSE\t0\tsid\t" + SECRET + "\r\x00", "characters a browser"),
        ("example.com\tTRUE\t/\tFALSE\t0\tsi=d\t" + SECRET, "characters a browser"),
        ("example.com\tTRUE\t/\tFALSE\t0\tsid\tcafé" + SECRET, "characters a browser"),
        ("example.com\tTRUE\t/\tFALSE\t0\tsid\t" + SECRET + "\textra", "found 8"),
    ],
)
def test_lines_not_understood_are_reported_by_number_without_their_text(line, why):
    text = f"# Netscape HTTP Cookie File\nexample.com\tFALSE\t/\tFALSE\t0\tok\t1\n{line}\n"
    parsed = ct.parse(text)
    assert [c.name for c in parsed.cookies] == ["ok"]
    assert parsed.bad_lines == 1
    [problem] = parsed.problems
    assert problem.startswith("line 3: ") and why in problem
    assert SECRET not in problem and "sid" not in problem


def test_odd_but_valid_lines():
    text = (
        "\ufeff# Netscape HTTP Cookie File\n"
        "   \n"
        "  # an indented comment\n"
        "example.com\tFALSE\t/\tFALSE\t\tempty_expiry\tx\n"  # curl: nothing for a session
        "example.com\tFALSE\t/\tFALSE\t0\tno_value\n"  # the value's tab left out
        "example.com\tFALSE\t/\tFALSE\t1900000000.5\tfraction\ty\n"
        "example.com\tFALSE\t/\tFALSE\t99999999999999999\tfar\tz\n"
        "EXAMPLE.COM.\tfalse\t/\ttrue\t0\tcase\tw\n"
        "example.com\tFALSE\t/\tFALSE\t0\tcase\tlast-wins\n"
    )
    parsed = ct.parse(text)
    assert parsed.problems == []
    got = {c.name: c for c in parsed.cookies}
    assert got["empty_expiry"].expires is None and got["no_value"].value == ""
    assert got["fraction"].expires == 1900000000
    assert got["far"].expires == 253402300799  # clamped to the year 9999
    assert got["case"].domain == "example.com" and got["case"].value == "last-wins"


def test_many_bad_lines_are_counted_after_the_first_ones():
    text = "\n".join(["garbage"] * 500 + ["example.com\tFALSE\t/\tFALSE\t0\tok\t1"])
    parsed = ct.parse(text)
    assert parsed.bad_lines == 500 and len(parsed.cookies) == 1
    assert len(parsed.problems) == ct.MAX_PROBLEMS + 1
    assert parsed.problems[-1] == f"... and {500 - ct.MAX_PROBLEMS} more lines not understood"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[{"domain": ".example.com", "name": "sid"}]', "JSON export"),
        ("#LWP-Cookies-2.0\nSet-Cookie3: a=b", "LWP cookie file"),
        ("", "holds no cookie"),
        ("# Netscape HTTP Cookie File\n# only comments\n", "holds no cookie"),
        ("<html><body>Sign in</body></html>\n", "no cookie could be read"),
    ],
)
def test_files_that_are_not_cookies_txt_are_refused(text, why):
    with pytest.raises(ct.CookieFileError, match=why):
        ct.select(ct.parse(text), ["example.com"], NOW)


def test_reading_a_file_caps_its_size_and_wants_utf8(tmp_path):
    good = tmp_path / "cookies.txt"
    good.write_bytes(b"\xef\xbb\xbf" + BROWSER.encode())
    assert cookiefile.read_file(good) == BROWSER  # the BOM dropped

    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"# " + b"x" * ct.MAX_BYTES + b"\n")
    with pytest.raises(ct.CookieFileError, match="larger than 512 KB"):
        cookiefile.read_file(huge)
    with pytest.raises(ct.CookieFileError, match="larger than 512 KB"):
        ct.parse("x" * (ct.MAX_BYTES + 1))

    latin = tmp_path / "latin1.txt"
    latin.write_bytes(b"# ok\n# ok\nexample.com\tFALSE\t/\tFALSE\t0\tn\tcaf\xe9\n")
    with pytest.raises(ct.CookieFileError, match=r"not UTF-8 text \(line 3, byte 43\)"):
        cookiefile.read_file(latin)

    utf16 = tmp_path / "utf16.txt"
    utf16.write_bytes(BROWSER.encode("utf-16"))
    with pytest.raises(ct.CookieFileError, match="UTF-16"):
        cookiefile.read_file(utf16)

    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xd8")
    with pytest.raises(ct.CookieFileError, match="not UTF-8"):
        cookiefile.read_file(binary)

    with pytest.raises(ct.CookieFileError, match="No such file"):
        cookiefile.read_file(tmp_path / "missing.txt")
    with pytest.raises(ct.CookieFileError, match="is a folder"):
        cookiefile.read_file(tmp_path)


def test_kept_cookies_become_the_runners_session_file_and_are_sent(tmp_path):
    text = BROWSER + "\nwww.example.com\tFALSE\t/\tTRUE\t0\t\tbare\n"  # a cookie without name
    kept = ct.select(ct.parse(text), ["www.example.com"], NOW).kept
    jar = tmp_path / "sessions" / "portal.cookies"
    write_cookies([c.to_cookiejar() for c in kept], jar)
    assert stat.S_IMODE(jar.stat().st_mode) == 0o600
    assert stat.S_IMODE(jar.parent.stat().st_mode) == 0o700
    assert not [p for p in os.listdir(jar.parent) if p != "portal.cookies"]  # no temp file left

    back = read_cookies(jar, ignore_expires=True)
    assert [c.name for c in back] == ["session", "csrf", "bare"]
    session = requests.Session()
    for cookie in back:
        session.cookies.set_cookie(cookie)
    sent = session.prepare_request(requests.Request("GET", "https://www.example.com/account/x"))
    assert sent.headers["Cookie"] == f"csrf=abc; session={SECRET}; bare"
    sent = session.prepare_request(requests.Request("GET", "https://example.com/"))
    assert sent.headers["Cookie"] == f"session={SECRET}"  # csrf was for www only
    sent = session.prepare_request(requests.Request("GET", "http://www.example.com/account/"))
    assert "Cookie" not in sent.headers  # all of them are secure: https only

    shown = [ct.describe(c) for c in back]
    assert shown[0] == {
        "name": "session",
        "domain": ".example.com",
        "path": "/",
        "expires": LATER,
        "secure": True,
        "http_only": True,
    }
    assert shown[2]["name"] == "(no name)"  # a nameless cookie's "name" is its value
    assert SECRET not in repr(shown)


def test_a_hostile_file_at_the_size_cap_is_read_quickly_and_summed_up_briefly():
    line = "site{i}.example\tFALSE\t/\tFALSE\t0\tn\tv\n"
    text = "".join(line.format(i=i) for i in range(ct.MAX_BYTES // (len(line) + 2)))
    text += "www.example.com\tFALSE\t/\tFALSE\t0\tsid\tx\n"
    assert len(text) <= ct.MAX_BYTES
    started = time.monotonic()
    chosen = ct.select(ct.parse(text), ["www.example.com"], NOW)
    assert time.monotonic() - started < 5
    summary = chosen.summary()
    assert len(summary["other_domains"]) == ct.MAX_LISTED
    assert summary["dropped_other"] == len(chosen.other_domains) > 10000

    many = "".join(f"example.com\tFALSE\t/\tFALSE\t0\tc{i}\tv\n" for i in range(ct.MAX_COOKIES + 1))
    with pytest.raises(ct.CookieFileError, match="more than 1000: not a browser's export"):
        ct.select(ct.parse(many), ["example.com"], NOW)
