"""Suggesting a portal: find its login form and write a disabled draft description of it.

The user gives the address of a portal gmid does not know. gmid opens it (through gmid.portals.web,
so with the same rules as a portal run), finds the login form, following one "log in" link if
the page has none, and writes a complete `portals:` entry for the form connector into the
config's include folder: disabled, with every point it could not decide marked `# TODO:`.
The placeholders are valid values, so the config still loads with the draft in it.
"""

from __future__ import annotations

import contextlib
import json
import re
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import soupsieve
from bs4 import BeautifulSoup, Tag

from connectors.form.extract import find_form, guess_login_fields, public_url
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
) -> dict:
    """Fetch a portal's login page, write a disabled draft for it, record the suggestion."""
    if policy is None:
        limit = min(PAGE_CAP, config.runs.max_download)
        policy = HttpPolicy(timeout=config.runs.request_timeout, max_download=limit)
    url = _web_address(url, policy)
    # as users compare domains: lower case, without "www." and a final dot
    domain = (domain or urlsplit(url).hostname or "").strip().lower().rstrip(".")
    domain = domain.removeprefix("www.") or "portal"
    todo: list[tuple[str, str]] = []
    link_error = None
    browser = make_browser(policy)
    try:
        first = page = _fetch(browser, url)
        form = find_form(page.soup, None, _PASSWORD)
        if form is None and (link := _login_link(page)) is not None:
            try:
                page = _fetch(browser, link)
            except PortalError as e:  # the first page is still worth a draft
                link_error = f"the page's login link could not be opened: {e}"
            form = find_form(page.soup, None, _PASSWORD)
    except GmidError:
        record_suggestion(index, url, domain, None)  # the wish counts even if the page failed
        raise
    finally:
        browser.close()
    folder, why_not = include_folder(config, f"{slug(domain)}.yaml")
    note = why_not or f"{folder} is included by the config; after editing the draft: `gmid reload`"
    company = _company([first, page]) or domain
    body = _form_yaml(page, form, todo, link_error)
    try:
        name, path = _write_new(folder, slug(domain), _taken(config), company, body, url)
    except OSError as e:
        record_suggestion(index, url, domain, None)
        raise GmidError(f"cannot write the draft into {folder}: {e.strerror or e}") from e
    record_suggestion(index, url, domain, str(path))
    todo = [
        ("username", "your user name (or e-mail address) on the portal"),
        ("password", f"set {_env_name(name)} in the daemon's environment, or change it"),
        *todo,
        ("enabled", "set it to true when the rest is filled in"),
    ]
    return {
        "url": url,
        "domain": domain,
        "name": name,
        "login_url": page.url,
        "form_found": form is not None,
        "draft": str(path),
        "todo": [f"{key}: {text}" for key, text in todo],
        "note": note,
    }


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


def _fetch(browser, url: str) -> _Page:
    """Open a page (redirects followed) and parse it; PortalError if it is not a web page."""
    response = browser.session.get(url, stream=True)
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
        encoding = response.encoding if "charset" in declared.lower() else None
        soup = BeautifulSoup(body, from_encoding=encoding, **browser.soup_config)
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


def _form_selector(soup: BeautifulSoup, form: Tag) -> str:
    """Return a CSS selector that selects this form first: by id, name or action if they do."""
    candidates = []
    if form.get("id"):
        candidates.append(f"form#{soupsieve.escape(str(form['id']))}")
    for attribute in ("name", "action"):
        value = str(form.get(attribute) or "")
        # an action with a query or ";jsessionid" changes from one visit to the next
        if value and not re.search(r'[?;"\\\n]', value):
            candidates.append(f'form[{attribute}="{value}"]')
    candidates.append(f"form:has({_PASSWORD})")  # what selects the first login form anyway
    for selector in candidates:
        with contextlib.suppress(soupsieve.SelectorSyntaxError):
            if soupsieve.select_one(selector, soup) is form:
                return selector
    return candidates[-1]


def _form_yaml(
    page: _Page, form: Tag | None, todo: list[tuple[str, str]], link_error: str | None
) -> list[str]:
    """Return the draft's `form:` lines (indented for a portal entry); add what is left to do."""
    lines = ["    form:", f"      start: {_q(page.url)}"]

    def ask(indent: int, key: str, text: str) -> None:
        todo.append((key, text))
        pad = " " * indent
        lines.extend(
            textwrap.wrap(text, 98, initial_indent=pad + "# TODO: ", subsequent_indent=pad + "#   ")
        )

    if link_error is not None:
        ask(6, "form.start", link_error)
    if form is None:
        ask(
            6,
            "form.start",
            f"no login form (a form with a password input) was found at {public_url(page.url)}: "
            "put the login page's address here, and `form:` and `fields:` under `login:` "
            "(a form that only JavaScript makes needs a Python connector)",
        )
    lines.append("      login:")
    if form is not None:
        lines.append(f"        form: {_q(_form_selector(page.soup, form))}")
        lines.append("        fields:")
        for key, value in zip(("username", "password"), guess_login_fields(form), strict=True):
            if value is None:
                ask(10, f"login.fields.{key}", f"the `name` of the input that takes the {key}")
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
            ask(8, "captcha", "the form shows a captcha: add `captcha: {image: ..., field: ...}`")
    ask(8, "login.success", "the selector of an element shown only when logged in, e.g. a.logout")
    lines.append("        success: {selector: TODO}")
    lines.append("        # optional: failure: {selector: .alert-danger}, the wrong-password text")
    lines.append("      # a one-time code after the login? add `code:` (docs/form-connector.md)")
    lines.append("      documents:")
    for key, text, value in _DOCUMENT_TODOS:
        ask(8, f"documents.{key}", text)
        lines.append(f"        {key}: {value}")
    lines.append("        # optional: fields: {date: ..., number: ..., amount: ...}, next: ...")
    return lines


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
    folder: Path, stem: str, taken: set[str], company: str, form: list[str], url: str
) -> tuple[str, Path]:
    """Write the draft under a name no file and no portal has yet; return the name and path."""
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}-{n}"
        path = folder / f"{name}.yaml"
        if name.casefold() in taken or path.exists():
            continue
        text = _draft_text(name, company, form, url).encode("utf-8")
        try:
            # 0640: no secret in it; the group may read the config. Never replaces a file
            # made in the meantime.
            write_atomic(path, text, 0o640, replace=False)
        except FileExistsError:
            continue
        return name, path
    raise GmidError(f"{folder}: too many drafts named {stem}-N.yaml; remove some")


def _draft_text(name: str, company: str, form: list[str], url: str) -> str:
    today = datetime.now(UTC).date().isoformat()
    head = [
        f"# Drafted by `gmid suggest` from {public_url(url)} on {today}.",
        "# Fill in every TODO, set `enabled: true`, then run `gmid check-config` and",
        f"# `gmid fetch {name} --wait`. The reference: docs/form-connector.md.",
        "portals:",
        f"  - name: {_q(name)}",
        f"    company: {_q(company)}",
        "    enabled: false",
        "    # TODO: your user name (or e-mail address) on the portal",
        "    username: TODO",
        f"    # TODO: set {_env_name(name)} in the daemon's environment, or use",
        "    # {command: ...}, {file: ...} or {credential: ...} (see config.example.yaml)",
        f"    password: {{env: {_env_name(name)}}}",
    ]
    return "\n".join([*head, *form]) + "\n"
