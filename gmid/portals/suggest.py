"""Suggesting a portal: find its login form and write a disabled draft description of it.

The user gives the address of a portal gmid does not know. gmid opens it (through gmid.portals.web,
so with the same rules as a portal run), finds the login form, following one "log in" link or
button if the page has none, and writes a complete `portals:` entry for the form connector into
the config's include folder: disabled, with every point it could not decide marked `# TODO:`.
The placeholders are valid values, so the config still loads with the draft in it. A page that
asks for the user name alone is drafted as a two-step login (`login.steps`).

With the user's own login (`Login`), gmid also logs in and looks for the page listing the
invoices, a few links deep at most, and drafts `documents:` from its rows, marked to check.
The password goes to the portal only (in a POST), never into the draft, the index or a log.
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag

from connectors.form.extract import (
    find_form,
    guess_login_fields,
    parse_amount,
    parse_date,
    public_url,
)
from connectors.form.html import charset, parse_html
from connectors.form.widgets import DEFAULT_SELECTOR as WIDGET_SELECTOR
from gmid.archive.fs import write_atomic
from gmid.archive.index import Index
from gmid.config.includes import include_folder, slug
from gmid.config.load import Config, load_config
from gmid.errors import GmidError, InsecureTransport, PortalError
from gmid.net import is_loopback
from gmid.portals.runlog import record_suggestion
from gmid.portals.web import HttpPolicy, make_browser, read_body

PAGE_CAP = 5 * 10**6  # a login page; more is not a web page worth reading
_PASSWORD = 'input[type="password" i]'
_LOGIN_WORDS = (
    "login", "log in", "log-in", "signin", "sign in", "sign-in", "anmelden", "anmeldung",
    "einloggen", "connexion", "se connecter", "mein konto", "my account", "mon compte",
    "kundenportal", "kundenbereich", "kundenlogin", "espace client", "customer portal",
)  # fmt: skip
# Links that contain a login word but lead elsewhere ("/login/forgot", "Log out").
_NOT_LOGIN = (
    "logout", "log out", "abmelden", "forgot", "vergessen", "oubli", "reset", "register",
    "registrieren", "sign up", "signup", "inscription",
)  # fmt: skip
_GENERIC_TITLES = ("home", "startseite", "welcome", "willkommen", "accueil", "bienvenue")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_DOCUMENT_TODOS = (
    ("pages", "the page(s) listing the invoices, e.g. [/invoices]", "[TODO]"),
    ("rows", 'the selector of one invoice\'s row, e.g. "table.invoices tbody tr"', "TODO"),
    ("download", "the download link in a row, e.g. {selector: a.pdf}", "{selector: TODO}"),
)
_NOT_SENT = ("submit", "button", "image", "reset", "file")
_BUTTONS = 'button, input[type="submit" i], input[type="button" i]'
_USER_INPUTS = 'input:not([type]), input[type="text" i], input[type="email" i], input[type="tel" i]'
_USER_NAMES = r"user|e-?mail|login|ident|account|kunde|customer"
_SUBMITS = 'button:not([type="button" i]):not([type="reset" i]), input[type="submit" i]'
_NOT_IDENTIFIER = (
    "newsletter", "subscribe", "abonn", "search", "suche", "recherche", "contact", "kontakt",
    "register", "registrier", "sign up", "inscri", "forgot", "vergessen", "reset",
)  # fmt: skip
_DOCUMENT_WORDS = (
    "rechnung", "invoice", "facture", "document", "dokument", "beleg", "billing", "abrechnung",
    "postfach", "bills", "quittung", "receipt",
)  # fmt: skip
_DOWNLOAD_WORDS = ("download", "pdf", "rechnung", "invoice", "facture", "herunterladen")
_DOWNLOAD_SELECTORS = (
    'a[href$=".pdf" i]', 'a[href*=".pdf" i]', 'a[href*="download" i]', "a[download]", "a[href]",
)  # fmt: skip
_DATE_FORMATS = (
    (r"\d{1,2}\.\d{1,2}\.\d{4}", "%d.%m.%Y"),
    (r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
    (r"\d{1,2}/\d{1,2}/\d{4}", "%d/%m/%Y"),
    (r"\d{1,2}\.\d{1,2}\.\d{2}", "%d.%m.%y"),
)
_CURRENCY = r"€|\$|£|\bEUR\b|\bCHF\b|\bUSD\b|\bGBP\b"
_NUMBER = r"(?:[A-Za-z]{1,5}[-/ ]?)?\d[\w/-]{3,}"
_MAX_REQUESTS = 10  # with --login: the whole visit, link and login pages too
_MAX_CANDIDATES = 3  # pages that might list the invoices
_CAPTCHA_IMAGE = 'img[src*="captcha" i], img[id*="captcha" i], img[class*="captcha" i]'


@dataclass(frozen=True)
class _Page:
    url: str  # where the page was found, redirects followed, without fragment
    soup: BeautifulSoup


def suggest(
    url: str,
    *,
    domain: str | None,
    config: Config,
    index: Index,
    policy: HttpPolicy | None = None,
    login: Login | None = None,
) -> dict:
    """Fetch a portal's login page, write a disabled draft for it, record the suggestion.

    With `login` (the user's own credentials) gmid also logs in, looks for the page listing
    the invoices and drafts `documents:` from it. The password is only sent to the portal.
    """
    if policy is None:
        limit = min(PAGE_CAP, config.runs.max_download)
        policy = HttpPolicy(timeout=config.runs.request_timeout, max_download=limit)
    url = _web_address(url, policy)
    # as users compare domains: lower case, without "www." and a final dot
    domain = (domain or urlsplit(url).hostname or "").strip().lower().rstrip(".")
    domain = domain.removeprefix("www.") or "portal"
    todo: list[tuple[str, str]] = []
    browser = make_browser(policy)
    try:
        found = _explore(browser, url, login)
    except GmidError:
        record_suggestion(index, url, domain, None)  # the wish counts even if the page failed
        raise
    finally:
        browser.close()
    page = found.login_page
    folder, why_not = include_folder(config, f"{slug(domain)}.yaml")
    note = why_not or f"{folder} is included by the config; after editing the draft: `gmid reload`"
    company = _company([found.first, page]) or domain
    body = _form_yaml(found, todo)
    secret = _Secret(login.username if login else None, login.password_file if login else None)
    try:
        name, path = _write_new(folder, slug(domain), _taken(config), company, body, url, secret)
    except OSError as e:
        record_suggestion(index, url, domain, None)
        raise GmidError(f"cannot write the draft into {folder}: {e.strerror or e}") from e
    record_suggestion(index, url, domain, str(path))
    todo = [
        *(
            []
            if secret.username
            else [("username", "your user name (or e-mail address) on the portal")]
        ),
        *(
            []
            if secret.file
            else [("password", f"set {_env_name(name)} in the daemon's environment, or change it")]
        ),
        *todo,
        ("enabled", "set it to true when the rest is filled in"),
    ]
    return {
        "url": url,
        "domain": domain,
        "name": name,
        "login_url": page.url,
        "form_found": found.form is not None or found.identifier is not None,
        "draft": str(path),
        "todo": [f"{key}: {text}" for key, text in todo],
        "note": note,
        "two_step": found.identifier is not None,
        "logged_in": found.logged_in,
        "documents_url": found.documents.url if found.documents else None,
    }


@dataclass(frozen=True)
class Login:
    """The user's own credentials, to see what the portal shows after the login."""

    username: str
    password: str = field(repr=False)
    password_file: str | None = None  # goes into the draft as `password: {file: ...}`


@dataclass(frozen=True)
class _Secret:
    username: str | None
    file: str | None


@dataclass
class _Found:
    """What the visit found: the pages, the forms, and what the login showed."""

    first: _Page
    login_page: _Page
    form: Tag | None = None  # the form with the password input
    identifier: Tag | None = None  # the first step's form of a two-step login
    password_page: _Page | None = None  # the second step's page, seen with --login
    link_error: str | None = None
    login_error: str | None = None  # what went wrong with the user's credentials
    logged_in: bool = False
    logout: str | None = None  # a selector of the logged-in page's "log out" link
    documents: _Documents | None = None
    requests: int = 0


def _explore(browser, url: str, login: Login | None) -> _Found:
    """Open the address, find the login (one link or button followed), log in if asked."""
    first = _fetch(browser, url)
    found = _Found(first, first, requests=1)
    _look_for_login(found)
    if found.form is None and found.identifier is None:
        link = _login_link(first)
        target = (link, "GET", None) if link is not None else _login_button(first)
        if target is not None:
            try:
                found.login_page = _fetch(browser, *target)
            except PortalError as e:  # the first page is still worth a draft
                found.link_error = f"the page's login link could not be opened: {e}"
            found.requests += 1
            _look_for_login(found)
    if login is not None:
        try:
            _log_in(browser, found, login)
        except PortalError as e:
            found.login_error = f"logging in failed: {e}"
    return found


def _look_for_login(found: _Found) -> None:
    soup = found.login_page.soup
    found.form = find_form(soup, None, _PASSWORD)
    found.identifier = _identifier_form(soup) if found.form is None else None


def _web_address(url: str, policy: HttpPolicy) -> str:
    """Return the URL to open (https:// added to a bare host name, no user info, no fragment);
    refuse other schemes, and plain http to another machine, before anything is sent."""
    url = url.strip()
    if "://" not in url and re.match(r"[\w.-]+\.[\w-]+(:\d+)?(/|$)", url):
        url = "https://" + url  # "stadtwerke.example/login" is what people copy from a browser
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        raise InsecureTransport(f"{url!r}: give the portal's web address, https://...")
    if scheme == "http" and not (is_loopback(host) or policy.allow_http):
        raise InsecureTransport(
            f"{public_url(url)}: only https is allowed (plain http only to this machine); "
            "nothing was sent"
        )
    # a password in the address would end up in the index and the draft
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=netloc, fragment="").geturl()


def _fetch(browser, url: str, method: str = "GET", data: dict | None = None) -> _Page:
    """Open a page (redirects followed) and parse it; PortalError if it is not a web page.
    A form's `data` goes into the query of a GET, the body of a POST."""
    if method == "POST":
        response = browser.session.post(url, data=data, stream=True)
    else:
        response = browser.session.get(url, params=data, stream=True)
    with contextlib.closing(response):
        where = public_url(response.url)
        # 401/403 pages often are the login page itself; other errors mean a wrong address
        if response.status_code >= 400 and response.status_code not in (401, 403):
            raise PortalError(
                f"{where}: the portal answered HTTP {response.status_code} {response.reason}; "
                "check the address"
            )
        body = read_body(response)
        declared = response.headers.get("Content-Type", "")
        media = declared.split(";")[0].strip().lower()
        sniffed = re.search(rb"<(!doctype html|html|form)\b", body[:4096].lower()) is not None
        if media not in _HTML_TYPES and not (media in ("", "application/octet-stream") and sniffed):
            raise PortalError(
                f"{where}: not a web page ({media or 'no content type'}); give the address of "
                "the portal's login page or home page"
            )
        soup = parse_html(body, encoding=charset(declared))
        return _Page(urldefrag(response.url).url, soup)


def _says_login(text: str) -> bool:
    text = text.casefold()
    return any(w in text for w in _LOGIN_WORDS) and not any(w in text for w in _NOT_LOGIN)


def _login_link(page: _Page) -> str | None:
    """Return the target of the page's best "log in" link: by its text, else by its address."""
    by_href = None
    for a in page.soup.select("a[href]"):
        href = str(a["href"]).strip()
        if not href or href.startswith("#") or urlsplit(href).scheme not in ("", "http", "https"):
            continue
        target = urldefrag(urljoin(page.url, href)).url
        if target == page.url:
            continue
        text = " ".join([a.get_text(" ", strip=True), a.get("title", ""), a.get("aria-label", "")])
        if _says_login(text):
            return target
        if by_href is None and _says_login(unquote(href)):
            by_href = target
    return by_href


def _submit_target(page: _Page, form: Tag, data: dict[str, str]) -> tuple[str, str, dict]:
    """Where a form goes: its absolute action, its method, and what it sends."""
    action = urldefrag(urljoin(page.url, str(form.get("action") or ""))).url
    method = "POST" if str(form.get("method") or "get").lower() == "post" else "GET"
    return action, method, data


def _form_data(form: Tag) -> dict[str, str]:
    """The values a browser would send for a form (buttons, files and unticked boxes not)."""
    data = {}
    for tag in form.select("input[name], select[name], textarea[name]"):
        kind = str(tag.get("type") or "").lower()
        if kind in _NOT_SENT or (kind in ("checkbox", "radio") and not tag.has_attr("checked")):
            continue
        if tag.name == "select":
            option = tag.select_one("option[selected]") or tag.select_one("option")
            data[str(tag["name"])] = str(option.get("value", option.get_text())) if option else ""
        elif tag.name == "textarea":
            data[str(tag["name"])] = tag.get_text()
        else:
            data[str(tag["name"])] = str(tag.get("value") or "")
    return data


def _login_button(page: _Page) -> tuple[str, str, dict] | None:
    """Return where a form's "log in" button leads: a GET form, or a form of buttons and hidden
    inputs only (nothing of the user's is sent)."""
    for button in page.soup.select(_BUTTONS):
        form = button.find_parent("form")
        text = " ".join([button.get_text(" ", strip=True), str(button.get("value") or "")])
        if form is None or not _says_login(text + " " + str(button.get("aria-label") or "")):
            continue
        visible = form.select('input:not([type="hidden" i]):not([type="submit" i]), textarea')
        if str(form.get("method") or "get").lower() == "post" and visible:
            continue
        data = _form_data(form)
        if button.get("name"):
            data[str(button["name"])] = str(button.get("value") or "")
        target = _submit_target(page, form, data)
        if target[0] != page.url or target[1] == "POST":
            return target
    return None


def _identifier_form(soup: BeautifulSoup) -> Tag | None:
    """Return the first step of an "identifier first" login: a form with a submit button,
    without a password input, whose only text input is named like a user name or e-mail
    address (and not a newsletter's or a search's)."""
    for form in soup.select("form"):
        inputs = form.select(_USER_INPUTS)
        if len(inputs) != 1 or form.select_one(_PASSWORD) or not form.select_one(_SUBMITS):
            continue
        name = str(inputs[0].get("name") or "")
        kind = str(inputs[0].get("type") or "").lower()
        said = " ".join(
            [str(form.get(a) or "") for a in ("action", "id", "name")]
            + [" ".join(form.get("class", [])), name]
            + [_text(b) + " " + str(b.get("value") or "") for b in form.select(_SUBMITS)]
        )
        if _says(_NOT_IDENTIFIER, said):
            continue
        if name and (kind == "email" or re.search(_USER_NAMES, name, re.IGNORECASE)):
            return form
    return None


def _identifier_step(browser, found: _Found, login: Login) -> tuple[_Page, Tag | None]:
    """Submit the user name in the first step's form; return the page that came, its password
    form if it has one."""
    user_field = str(found.identifier.select(_USER_INPUTS)[0]["name"])
    data = _form_data(found.identifier) | {user_field: login.username}
    page = _fetch(browser, *_submit_target(found.login_page, found.identifier, data))
    found.requests += 1
    found.password_page = page
    form = find_form(page.soup, None, _PASSWORD)
    if form is None:
        found.login_error = "after the user name, no page with a password form came"
    return page, form


def _log_in(browser, found: _Found, login: Login) -> None:
    """Log in with the user's credentials: submit the user name first in a two-step login;
    logged in when the answer no longer shows the password form."""
    page, form = found.login_page, found.form
    if found.identifier is not None:
        page, form = _identifier_step(browser, found, login)
        if form is None:
            return
    user_name, password_name = guess_login_fields(form) if form is not None else (None, None)
    if form is None or password_name is None:
        found.login_error = "no login form with a named password input to log in with"
        return
    target = _submit_target(page, form, {})
    if target[1] != "POST":  # the password would be in the address, in logs and history
        found.login_error = "the login form sends the password in the address (GET); not sent"
        return
    data = _form_data(form) | {password_name: login.password}
    if user_name is not None and found.identifier is None:
        data[user_name] = login.username
    after = _fetch(browser, *_submit_target(page, form, data))
    found.requests += 1
    if find_form(after.soup, None, _PASSWORD) is not None:
        found.login_error = "the portal showed the password form again (wrong password?)"
        return
    found.logged_in = True
    found.logout = _logout_selector(after)
    found.documents = _find_documents(browser, after, found)


def _logout_selector(page: _Page) -> str | None:
    for a in page.soup.select("a[href]"):
        words = " ".join([a.get_text(" ", strip=True), str(a["href"])]).casefold()
        if any(w in words for w in ("logout", "log out", "abmelden", "déconnexion", "signout")):
            for selector in (f'a[href="{a["href"]}"]', "a.logout"):
                with contextlib.suppress(soupsieve.SelectorSyntaxError):
                    if page.soup.select_one(selector) is a:
                        return selector
    return None


@dataclass(frozen=True)
class _Documents:
    """A list page with rows of invoices, and how the draft reads them."""

    url: str
    rows: str
    download: str
    fields: dict[str, dict]


def _find_documents(browser, page: _Page, found: _Found) -> _Documents | None:
    """Look for the invoices: on the logged-in page, then behind a few of its links."""
    if (documents := _read_documents(page)) is not None:
        return documents
    for target in _document_links(page)[:_MAX_CANDIDATES]:
        if found.requests >= _MAX_REQUESTS:
            break
        found.requests += 1
        try:
            candidate = _fetch(browser, target)
        except PortalError:
            continue
        if (documents := _read_documents(candidate)) is not None:
            return documents
    return None


def _document_links(page: _Page) -> list[str]:
    """The page's links that say invoices, on the same host, best (by their text) first."""
    by_text, by_href = [], []
    host = urlsplit(page.url).hostname
    for a in page.soup.select("a[href]"):
        href = str(a["href"]).strip()
        target = urldefrag(urljoin(page.url, href)).url
        if urlsplit(target).hostname != host or target == page.url or _is_pdf(target):
            continue
        if _says(_DOCUMENT_WORDS, a.get_text(" ", strip=True)):
            by_text.append(target)
        elif _says(_DOCUMENT_WORDS, unquote(href)):
            by_href.append(target)
    return list(dict.fromkeys(by_text + by_href))


def _says(words: tuple[str, ...], text: str) -> bool:
    text = text.casefold()
    return any(w in text for w in words)


def _is_pdf(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".pdf")


def _is_download(a: Tag) -> bool:
    href = str(a.get("href") or "")
    return _is_pdf(href) or _says(_DOWNLOAD_WORDS, a.get_text(" ", strip=True) + " " + href)


def _read_documents(page: _Page) -> _Documents | None:
    """Find the repeated element (a table row, a card) holding a download link."""
    links = [a for a in page.soup.select("a[href]") if _is_download(a)]
    if not links:
        return None
    for download in _DOWNLOAD_SELECTORS:
        rows = _rows_of(page.soup, links, download)
        if rows is not None:
            selector, tags = rows
            fields = _guess_fields(tags)
            # an "our app: download" link is no invoice: PDFs, or rows with a date or amount
            if fields.keys() & {"date", "amount"} or all(_is_pdf(str(a["href"])) for a in links):
                return _Documents(page.url, selector, download, fields)
            return None
    return None


def _rows_of(soup: BeautifulSoup, links: list[Tag], download: str) -> tuple[str, list] | None:
    """Return a selector of the elements that each hold one download link, and those."""
    first = links[0]
    for row in first.parents:
        if row.name in ("body", "html", "[document]") or row.parent is None:
            return None
        # the row holds this link first, and more than the link: a date, a number
        if row.select_one(download) is not first or _text(row) == _text(first):
            continue
        classes = "".join(f".{soupsieve.escape(c)}" for c in row.get("class", [])[:2])
        selector = f"{row.name}{classes}:has({download})"
        with contextlib.suppress(soupsieve.SelectorSyntaxError):
            tags = soup.select(selector)
            own = [t.select_one(download) for t in tags]
            # each row holds a download link of its own, not the whole list's
            if tags and all(a in links for a in own) and len({id(a) for a in own}) == len(own):
                return selector, tags
    return None


def _text(tag: Tag) -> str:
    return tag.get_text(" ", strip=True)


def _cells(row: Tag) -> list[Tag]:
    """A row's cells: a table row's td/th, else the elements with text and no child element."""
    cells = row.find_all(["td", "th"], recursive=False)
    return cells or [t for t in row.find_all(True) if t.get_text(strip=True) and not t.find(True)]


def _cell_selector(row: Tag, cell: Tag) -> str | None:
    """A selector of the cell inside its row: by class if that is unique, else by position."""
    for c in cell.get("class", []):
        selector = f"{cell.name}.{soupsieve.escape(c)}"
        if row.select_one(selector) is cell:
            return selector
    same = cell.parent.find_all(cell.name, recursive=False)
    selector = f"{cell.name}:nth-of-type({same.index(cell) + 1})"
    return selector if row.select_one(selector) is cell else None


def _guess_fields(rows: list[Tag]) -> dict[str, dict]:
    """Guess date, number and amount by what the first row's cells look like; keep a guess
    only if it reads in every row."""
    guesses: dict[str, dict] = {}
    for cell in _cells(rows[0]):
        text = cell.get_text(" ", strip=True)
        selector = _cell_selector(rows[0], cell)
        if selector is None:
            continue
        for key, value in _kinds(text):
            if key in guesses:
                continue
            spec = {"selector": selector, **value}
            if all(_reads(row, key, spec) for row in rows):
                guesses[key] = spec
                break
    return guesses


def _kinds(text: str) -> list[tuple[str, dict]]:
    """What a cell's text could be: a date (with its format), an amount, an invoice number."""
    kinds = []
    for pattern, fmt in _DATE_FORMATS:
        if re.fullmatch(pattern, text):
            kinds.append(("date", {"formats": [fmt]}))
    if re.search(_CURRENCY, text) and (m := re.search(r"\d([.,])\d{2}(?!\d)", text)):
        kinds.append(("amount", {"decimal": m.group(1)}))
    if not kinds and re.fullmatch(_NUMBER, text):
        kinds.append(("number", {}))
    return kinds


def _reads(row: Tag, key: str, spec: dict) -> bool:
    cell = row.select_one(spec["selector"])
    text = cell.get_text(" ", strip=True) if cell is not None else ""
    if key == "date":
        return parse_date(text, tuple(spec["formats"])) is not None
    if key == "amount":
        return parse_amount(text, spec["decimal"]) is not None
    return bool(re.fullmatch(_NUMBER, text))


def _company(pages: list[_Page]) -> str | None:
    """Return the brand in a page title ("Login | Stadtwerke Example"), if one says it."""
    for page in pages:
        title = page.soup.title.get_text(" ", strip=True) if page.soup.title else ""
        for part in re.split(r"\s+[|\-–—·:]\s+", title):
            part = part.strip()
            generic = _says_login(part) or part.casefold() in _GENERIC_TITLES
            if part and len(part) <= 60 and not generic:
                return part
    return None


def _form_selector(soup: BeautifulSoup, form: Tag, has: str = _PASSWORD) -> str:
    """Return a CSS selector that selects this form first: by id, name or action if they do."""
    candidates = []
    if form.get("id"):
        candidates.append(f"form#{soupsieve.escape(str(form['id']))}")
    for attribute in ("name", "action"):
        value = str(form.get(attribute) or "")
        # an action with a query or ";jsessionid" changes from one visit to the next
        if value and not re.search(r'[?;"\\\n]', value):
            candidates.append(f'form[{attribute}="{value}"]')
    candidates.append(f"form:has({has})")  # what selects the first such form anyway
    for selector in candidates:
        with contextlib.suppress(soupsieve.SelectorSyntaxError):
            if soupsieve.select_one(selector, soup) is form:
                return selector
    return candidates[-1]


class _Lines(list):
    """The draft's lines, and the TODOs they ask, in the order of the file."""

    def __init__(self, todo: list[tuple[str, str]]):
        super().__init__()
        self.todo = todo

    def ask(self, indent: int, key: str, text: str) -> None:
        self.todo.append((key, text))
        pad = " " * indent
        self.extend(
            textwrap.wrap(text, 98, initial_indent=pad + "# TODO: ", subsequent_indent=pad + "#   ")
        )


def _form_yaml(found: _Found, todo: list[tuple[str, str]]) -> list[str]:
    """Return the draft's `form:` lines (indented for a portal entry); add what is left to do."""
    page = found.login_page
    lines = _Lines(todo)
    lines += ["    form:", f"      start: {_q(page.url)}"]
    if found.link_error is not None:
        lines.ask(6, "form.start", found.link_error)
    if found.form is None and found.identifier is None:
        lines.ask(
            6,
            "form.start",
            f"no login form (a form with a password input) was found at {public_url(page.url)}: "
            "put the login page's address here, and `form:` and `fields:` under `login:` "
            "(a form that only JavaScript makes needs a Python connector)",
        )
    lines.append("      login:")
    if found.identifier is not None:
        _steps_yaml(found, lines)
    elif found.form is not None:
        _one_form_yaml(page, found.form, lines)
    if found.login_error is not None:
        lines.ask(8, "login", found.login_error)
    if found.logout is not None:
        lines.append("        # TODO: check: a link shown only when logged in")
        lines.append(f"        success: {{selector: {_q(found.logout)}}}")
    elif found.logged_in:
        lines.append("        # logged in when the page no longer shows the password form;")
        lines.append("        # better: success: {selector: ...} of an element only shown then")
    else:
        lines.ask(
            8,
            "login.success",
            "the selector of an element shown only when logged in, e.g. a.logout",
        )
        lines.append("        success: {selector: TODO}")
    lines.append("        # optional: failure: {selector: .alert-danger}, the wrong-password text")
    lines.append("      # a one-time code after the login? add `code:` (docs/form-connector.md)")
    _documents_yaml(found, lines)
    return lines


def _one_form_yaml(page: _Page, form: Tag, lines: _Lines) -> None:
    lines.append(f"        form: {_q(_form_selector(page.soup, form))}")
    lines.append("        fields:")
    for key, value in zip(("username", "password"), guess_login_fields(form), strict=True):
        if value is None:
            lines.ask(10, f"login.fields.{key}", f"the `name` of the input that takes the {key}")
        else:
            lines.append(f"          {key}: {_q(value)}")
    if (box := form.select_one('input[type="checkbox" i][name]')) is not None:
        pair = f"{{{box['name']}: {_q(str(box.get('value') or 'on'))}}}"
        lines.append(f"        # to tick the form's checkbox (remember me?): static: {pair}")
    if soupsieve.select_one(WIDGET_SELECTOR, page.soup):
        lines += [
            "        # a reCAPTCHA, hCaptcha or Turnstile check: its token comes from",
            "        # captcha_solver, or by hand (`gmid challenges` says how)",
        ]
    elif form.select_one(_CAPTCHA_IMAGE):
        lines.ask(8, "captcha", "the form shows a captcha: add `captcha: {image: ..., field: ...}`")


def _steps_yaml(found: _Found, lines: _Lines) -> None:
    """The two pages of an "identifier first" login: the user name, then the password."""
    first = found.identifier
    user = str(first.select(_USER_INPUTS)[0]["name"])
    selector = _form_selector(found.login_page.soup, first, f'input[name="{user}"]')
    lines.append("        # the user name on one page, the password on the next")
    lines.append("        steps:")
    lines.append(f"          - {{form: {_q(selector)}, username: {_q(user)}}}")
    page = found.password_page
    form = find_form(page.soup, None, _PASSWORD) if page is not None else None
    password = guess_login_fields(form)[1] if form is not None else None
    if form is None or password is None:
        lines.ask(
            10,
            "login.steps",
            "the password page's form and the `name` of its password input (seen after "
            "the user name; `gmid suggest URL --login USER` looks)",
        )
        lines.append("          - {form: TODO, password: TODO}")
        return
    second = _form_selector(page.soup, form)
    lines.append(f"          - {{form: {_q(second)}, password: {_q(password)}}}")


def _documents_yaml(found: _Found, lines: _Lines) -> None:
    lines.append("      documents:")
    documents = found.documents
    if documents is None:
        if found.logged_in:
            lines.ask(8, "documents", "no page with invoice links was found after the login")
        for key, text, value in _DOCUMENT_TODOS:
            lines.ask(8, f"documents.{key}", text)
            lines.append(f"        {key}: {value}")
        lines.append("        # optional: fields: {date: ..., number: ..., amount: ...}, next: ...")
        return
    start = urlsplit(found.login_page.url)
    where = urlsplit(documents.url)
    page = documents.url
    if (where.scheme, where.netloc) == (start.scheme, start.netloc):
        page = where._replace(scheme="", netloc="").geturl()
    lines.todo.append(("check", "the guessed `documents:` (# TODO: check): `gmid fetch --wait`"))
    lines.append("        # TODO: check: found after the login; `gmid fetch NAME --wait` tries it")
    lines.append(f"        pages: [{_q(page)}]")
    lines.append(f"        rows: {_q(documents.rows)}")
    lines.append(f"        download: {{selector: {_q(documents.download)}}}")
    if not documents.fields:
        lines.append("        # optional: fields: {date: ..., number: ..., amount: ...}, next: ...")
        return
    lines.append("        fields:  # TODO: check: guessed from the first rows")
    for key, spec in documents.fields.items():
        lines.append(f"          {key}: {json.dumps(spec, ensure_ascii=False)}")


def _taken(config: Config) -> set[str]:
    """The portal names in use, on disk too (the running config may be older)."""
    names = {p.name.casefold() for p in config.portals}
    with contextlib.suppress(GmidError, OSError):
        names |= {p.name.casefold() for p in load_config(config.path).portals}
    return names


def _env_name(name: str) -> str:
    return "GMID_" + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_PASSWORD"


def _q(text: str) -> str:
    """Quote a text for YAML (a JSON string is a YAML double-quoted scalar)."""
    return json.dumps(text, ensure_ascii=False)


def _write_new(
    folder: Path,
    stem: str,
    taken: set[str],
    company: str,
    form: list[str],
    url: str,
    secret: _Secret,
) -> tuple[str, Path]:
    """Write the draft under a name no file and no portal has yet; return the name and path."""
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}-{n}"
        path = folder / f"{name}.yaml"
        if name.casefold() in taken or path.exists():
            continue
        text = _draft_text(name, company, form, url, secret).encode("utf-8")
        try:
            # 0640: no secret in it; the group may read the config. Never replaces a file
            # made in the meantime.
            write_atomic(path, text, 0o640, replace=False)
        except FileExistsError:
            continue
        return name, path
    raise GmidError(f"{folder}: too many drafts named {stem}-N.yaml; remove some")


def _draft_text(name: str, company: str, form: list[str], url: str, secret: _Secret) -> str:
    today = datetime.now(UTC).date().isoformat()
    head = [
        f"# Drafted by `gmid suggest` from {public_url(url)} on {today}.",
        "# Fill in every TODO, set `enabled: true`, then run `gmid check-config` and",
        f"# `gmid fetch {name} --wait`. The reference: docs/form-connector.md.",
        "portals:",
        f"  - name: {_q(name)}",
        f"    company: {_q(company)}",
        "    enabled: false",
    ]
    if secret.username is None:
        head += [
            "    # TODO: your user name (or e-mail address) on the portal",
            "    username: TODO",
        ]
    else:
        head.append(f"    username: {_q(secret.username)}")
    if secret.file is None:
        head += [
            f"    # TODO: set {_env_name(name)} in the daemon's environment, or use",
            "    # {command: ...}, {file: ...} or {credential: ...} (see config.example.yaml)",
            f"    password: {{env: {_env_name(name)}}}",
        ]
    else:
        head.append(f"    password: {{file: {_q(secret.file)}}}")
    return "\n".join([*head, *form]) + "\n"
