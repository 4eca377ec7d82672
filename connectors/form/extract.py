"""Reading pages: forms, recognised states, and documents out of list rows.

Pure functions that never navigate. A list hands out records (HTML rows here, JSON elements
in connectors/form/jsonlist.py); a record only answers "the raw text for this Value";
everything after that (regex, date formats, amounts, the RemoteDocument) does not care whether
the record was an HTML row or a JSON object.
"""

from __future__ import annotations

import datetime
import logging
import re
from decimal import Decimal, InvalidOperation
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

from connectors.base import RemoteDocument
from connectors.form.spec import ListSpec
from connectors.form.values import Probe, Value
from gmid.errors import GmidError

logger = logging.getLogger(__name__)

_TEXT_INPUTS = ("", "text", "email", "tel")
_CODE_INPUTS = ("", "text", "tel", "number", "password")
_SPACE = re.compile(r"\s+")


class MissingValue(GmidError):
    """A row lacks a value the description requires (the download link, a configured id)."""

    def __init__(self, value: Value, reason: str = "matched nothing"):
        what = f"selector {value.selector!r}" if value.selector else "the row"
        what = f"path {value.expr!r}" if value.expr else what
        if value.attribute and value.attribute != "href":
            what += f" (attribute {value.attribute!r})"
        super().__init__(f"{value.path}: {what} {reason}")
        self.value = value


class Record(Protocol):
    """One listed document, before its values are cleaned up."""

    def raw(self, value: Value) -> str | None:
        """Return the text a Value points at, or None if it is not there."""


class HtmlRecord:
    """An HTML element (a table row, a card) whose values are read by CSS selectors."""

    def __init__(self, tag: Tag):
        self.tag = tag

    def raw(self, value: Value) -> str | None:
        """Return the element's text, or its attribute when the Value names one."""
        found = self.tag if value.selector is None else self.tag.select_one(value.selector)
        if found is None:
            return None
        if value.attribute is None:
            return found.get_text(" ", strip=True)
        attr = found.get(value.attribute)
        return " ".join(attr) if isinstance(attr, list) else attr


def read(record: Record, value: Value) -> str | None:
    """Return a record's value: whitespace collapsed, the regex's first group if one is given."""
    text = record.raw(value)
    if text is None:
        return None
    text = _SPACE.sub(" ", text).strip()
    if value.regex is not None:
        match = re.search(value.regex, text)
        text = match.group(1) if match is not None else None
    return text or None


# Month names as French and German portals write them, to the English that %B reads.
_MONTHS = {
    "January": "janvier janv januar jänner jaenner",
    "February": "février fevrier févr fevr februar",
    "March": "mars märz maerz mär",
    "April": "avril avr",
    "May": "mai",
    "June": "juin juni",
    "July": "juillet juil juli",
    "August": "août aout",
    "September": "septembre sept",
    "October": "octobre oktober okt",
    "November": "novembre",
    "December": "décembre decembre déc dezember dez",
}
_MONTH_WORD = {word: english for english, words in _MONTHS.items() for word in words.split()}
_WORD = re.compile(r"[^\W\d_]+\.?")


def _english_months(text: str) -> str:
    """The text with French and German month names (full or cut, with a dot) in English."""

    def english(m: re.Match[str]) -> str:
        word = m.group(0).rstrip(".").casefold()
        return _MONTH_WORD.get(word, m.group(0))

    return _WORD.sub(english, text)


def _epoch_date(text: str, per_second: int) -> datetime.date | None:
    """The UTC day of a time given as seconds (or milliseconds) since 1970."""
    try:
        seconds = float(text.strip()) / per_second
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).date()
    except (ValueError, OverflowError, OSError):
        return None


def parse_date(text: str | None, formats: tuple[str, ...]) -> datetime.date | None:
    """Return the date in `text` by the first format that fits (ISO when none is given).

    With a month name in the format (%b or %B), French and German names are read too:
    "12 janvier 2024", "3. März 2025", "12 févr. 2024".
    """
    if text is None:
        return None
    for fmt in formats or ("%Y-%m-%d",):
        if fmt in ("epoch", "epoch_ms"):
            if found := _epoch_date(text, 1000 if fmt == "epoch_ms" else 1):
                return found
            continue
        tries = [(text, fmt)]
        if "%b" in fmt or "%B" in fmt:
            tries.append((_english_months(text), fmt.replace("%b", "%B")))
        for candidate, form in tries:
            try:
                return datetime.datetime.strptime(candidate, form).date()
            except ValueError:
                continue
    return None


def parse_amount(text: str | None, decimal: str = ".") -> str | None:
    """Return an amount as a plain decimal: "1.234,50 €" with decimal "," -> "1234.50"."""
    if text is None:
        return None
    text = text.replace("\u2212", "-")
    # Thousands separators, currency signs and spaces all go; only the decimal mark means.
    digits = re.sub(rf"[^0-9{re.escape(decimal)}]", "", text).replace(decimal, ".")
    if not any(ch.isdigit() for ch in digits):
        return None
    try:
        amount = Decimal(digits)
    except InvalidOperation:
        return None
    negative = "-" in text or (text.strip().startswith("(") and text.strip().endswith(")"))
    return str(-amount if negative else amount)


def to_document(
    record: Record, spec: ListSpec, base_url: str, url: str | None = None
) -> RemoteDocument:
    """Make a RemoteDocument of a record; MissingValue if a required value is absent.

    `url` is the download's when the caller made it (JSON lists), else `spec.download` is read.
    """
    if url is None:
        url = link(record, spec.download, base_url)
    values = {name: read(record, value) for name, value in spec.fields.items()}
    if "id" in spec.fields and values["id"] is None:
        # Falling back to the URL would give one document two ids over time: it would be
        # downloaded again. A configured id that is missing means the page changed.
        raise MissingValue(spec.fields["id"])
    date_value = spec.fields.get("date")
    date = parse_date(values.get("date"), date_value.formats) if date_value else None
    if values.get("date") is not None and date is None:
        logger.info("%s: cannot read a date from %r", spec.fields["date"].path, values["date"])
    amount_value = spec.fields.get("amount")
    amount = parse_amount(values.get("amount"), amount_value.decimal) if amount_value else None
    if amount is not None and amount_value is not None and amount_value.cents:
        amount = str(Decimal(amount).scaleb(-2))
    return RemoteDocument(
        id=values.get("id") or url,
        url=url,
        date=date,
        number=values.get("number"),
        amount=amount,
        title=values.get("title"),
    )


def link(record: Record, value: Value, base_url: str) -> str:
    """Return the absolute http(s) URL a record's value gives; MissingValue if none."""
    href = read(record, value)
    if href is None:
        raise MissingValue(value)
    url = urljoin(base_url, href)
    if urlsplit(url).scheme not in ("http", "https"):
        raise MissingValue(value, f"gave {href!r}, not a web address")
    return url


def html_rows(page: BeautifulSoup, selector: str) -> list[HtmlRecord]:
    """Return the rows of a list page."""
    return [HtmlRecord(tag) for tag in page.select(selector)]


def matches(page: BeautifulSoup, url: str | None, probe: Probe | None) -> bool:
    """Tell whether a page shows what a probe looks for (every part of it)."""
    if probe is None:
        return False
    if probe.selector is not None and page.select_one(probe.selector) is None:
        return False
    return probe.url is None or re.search(probe.url, url or "") is not None


def probe_text(page: BeautifulSoup, url: str | None, probe: Probe | None) -> str | None:
    """Return the text of the message a probe looks for, or None if the page shows none.

    An element without text does not count: portals often keep an empty error box in the
    page. A probe of the URL alone finds "" (a message without words).
    """
    if probe is None or (probe.url is not None and re.search(probe.url, url or "") is None):
        return None
    if probe.selector is None:
        return ""
    texts = (_SPACE.sub(" ", tag.get_text(" ", strip=True)) for tag in page.select(probe.selector))
    return next((text for text in texts if text), None)


def find_form(page: BeautifulSoup, selector: str | None, has: str) -> Tag | None:
    """Return the form a selector names, else the first form containing `has`."""
    if selector is not None:
        found = page.select_one(selector)
        if found is None or found.name == "form":
            return found
        return found.find("form") or found.find_parent("form")
    return next((form for form in page.select("form") if form.select_one(has)), None)


def guess_login_fields(form: Tag) -> tuple[str | None, str | None]:
    """Return the names of the user name input (the text input before the password) and of
    the password input."""
    inputs = [i for i in form.find_all("input") if i.get("name")]
    kinds = [str(i.get("type", "")).lower() for i in inputs]
    if "password" not in kinds:
        return None, None
    at = kinds.index("password")
    before = [i for i, kind in zip(inputs[:at], kinds[:at], strict=True) if kind in _TEXT_INPUTS]
    return (before[-1]["name"] if before else None), inputs[at]["name"]


def guess_code_field(form: Tag) -> str | None:
    """Return the name of the input that takes a one-time code: the first visible text input."""
    for tag in form.find_all("input"):
        if tag.get("name") and str(tag.get("type", "")).lower() in _CODE_INPUTS:
            return tag["name"]
    return None


def looks_like_html(data: bytes, content_type: str | None) -> bool:
    """Tell whether a download is an HTML page: by its start, or by its Content-Type unless
    its bytes say PDF or image (what the runner's sniffing takes whatever the type said)."""
    declared = (content_type or "").split(";")[0].strip().lower()
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return True
    return declared in ("text/html", "application/xhtml+xml") and not head.startswith(_DOCUMENTS)


_DOCUMENTS = (b"%pdf", b"\x89png", b"\xff\xd8\xff", b"gif8", b"ii*\x00", b"mm\x00*")


def public_url(url: str | None) -> str:
    """Return a URL without its query and fragment, which may hold tokens, for messages."""
    if not url:
        return "(no page)"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# Query parameters whose values are shown in progress lines: the ones that tell pages apart.
# Any other value (a session id, a token, a signature...) is shown as "…".
_SHOWN_PARAMS = re.compile(
    r"(p|pg|page|pagenr|pagenumber|seite|offset|start|from|skip|limit|size|per_?page|year|"
    r"jahr|month|monat|period|zeitraum|date|datum|sort|order|type|typ|filter|category)",
    re.I,
)


def page_url(url: str | None) -> str:
    """A URL for progress lines: with the query that tells one list page from the next
    (`?page=2`), the value of every other parameter hidden."""
    if not url:
        return "(no page)"
    parts = urlsplit(url)
    query = [
        f"{name}={value if _SHOWN_PARAMS.fullmatch(name) else '…'}" if sep else name
        for name, sep, value in (field.partition("=") for field in parts.query.split("&") if field)
    ]
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return f"{shown}?{'&'.join(query)}" if query else shown
