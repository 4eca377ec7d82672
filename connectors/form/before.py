"""Running what a list needs beyond its pages: steps before it, periods, download forms.

A mixin of the form connector (connectors/form/connector.py), whose browser, pages and
checks it uses: `_list_plan` makes the `documents.before` steps and says which list pages to
read, period after period; `form_document` turns a row whose document comes from a form
(`download: {form: ...}`) into a RemoteDocument that carries the form's fields, its CSRF
token included, for the POST (or GET) that fetches it. The description is read in
connectors/form/beforespec.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import soupsieve
from bs4 import Tag

from connectors.base import RemoteDocument
from connectors.form import extract as x
from connectors.form import periods, trace
from connectors.form.values import Value
from gmid.errors import SessionExpired

if TYPE_CHECKING:
    from connectors.form.beforespec import BeforeStep
    from connectors.form.spec import ListSpec

logger = logging.getLogger(__name__)

_BUTTONS = ("submit", "image")
_NEVER_SENT = ("file", "reset", "button")


class BeforeList:
    """The part of FormConnector that runs `documents.before` and loops over the periods."""

    _listed_any = False  # a period listed documents: the later ones may be empty
    _form_pages: dict[str, str]  # a form download's id -> the list page that had its form

    def _list_plan(self) -> Iterator[tuple[str, bool]]:
        """Make the steps before the list, and yield (list URL, whether its first page may be
        empty) for every period, newest first; the steps from the first one that uses the
        period on are made again for each period, before its pages.

        A period's page may be empty (a January's year, a month without invoices) as long as
        another period lists documents: only the oldest period's pages are judged as a list
        without periods is, when no earlier period had any.
        """
        docs = self.spec.documents
        steps = docs.before
        split = next((i for i, step in enumerate(steps) if step.periodic), len(steps))
        self._listed_any = False
        self._before(steps[:split], None)
        plan = list(periods.each(docs.periods))
        for number, period in enumerate(plan, 1):
            if period is not None:
                self.ctx.progress(f"listing {period}")
            self._before(steps[split:], period)
            for page in docs.pages:
                url = urljoin(self.spec.start, periods.fill(page, period))
                may_be_empty = period is not None and (number < len(plan) or self._listed_any)
                yield url, may_be_empty

    def _before(self, steps: tuple[BeforeStep, ...], period: periods.Period | None) -> None:
        for step in steps:
            self.ctx.progress(f"before the list: {step.path}")
            fill = self._filler(period)
            if step.get is not None or step.page is not None:
                url = urljoin(self.spec.start, fill(step.get or step.page))
                self._response = self.browser.open(url)
                self._check_status(f"{step.path}.{'get' if step.get else 'page'}")
                self._still_logged_in(step)
            if step.form is None:
                continue
            form = x.find_form(self.page, step.form, "input")
            trace.matched(self.ctx, f"{step.path}.form", step.form, [form] if form else [])
            if form is None:
                raise self._changed(
                    f"{step.path}.form: selector {step.form!r} found no form", selector=step.form
                )
            filled = self._select(form)
            for name, value in step.fields:
                self._set(filled, name, fill(value), f"{step.path}.fields.{name}")
            self._submit()
            self._still_logged_in(step)

    def _filler(self, period: periods.Period | None) -> Callable[[str], str]:
        """Fill `{year}`, `{month}` and `{username}` in a step's texts."""
        return lambda text: periods.fill(text, period).replace("{username}", self.ctx.username)

    def _form_document(self, record: x.HtmlRecord, page_url: str) -> RemoteDocument:
        doc = form_document(record, self.spec.documents, page_url)
        if doc.method == "POST":
            self._form_pages[doc.id] = page_url  # as many as the list has rows
        return doc

    def _form_download(self, doc: RemoteDocument) -> tuple[bytes, str | None] | None:
        """POST a row's form as a browser does, from its list page: portals that check
        their CSRF token also check that the Referer is their own (Django does)."""
        page = self._form_pages.get(doc.id)
        if doc.method != "POST" or page is None:
            return None
        same_host = urlsplit(page).netloc == urlsplit(doc.url).netloc
        headers = {"Referer": page} if same_host else {}
        response = self.browser.session.post(
            doc.url, data=list(doc.form), headers=headers, stream=True
        )
        return self.ctx.read_body(response), response.headers.get("Content-Type")

    def _still_logged_in(self, step: BeforeStep) -> None:
        if self._login_form() is not None:
            raise SessionExpired(f"{self.ctx.portal}: {step.path} showed the login form")


def form_document(record: x.HtmlRecord, spec: ListSpec, page_url: str) -> RemoteDocument:
    """The document of a row whose form hands it out: its address, method and fields.

    MissingValue when the row has no such form, or the form leads to no web address.
    """
    selector = spec.download_form or "form"
    found = record.tag.select_one(selector)
    if found is None and soupsieve.match(selector, record.tag):
        found = record.tag
    form = found if found is None or found.name == "form" else found.find_parent("form")
    button = found if found is not None and found is not form else None  # the one clicked
    value = Value("documents.download.form", selector=selector)
    if form is None:
        raise x.MissingValue(value)
    action = urljoin(page_url, str(form.get("action") or "") or page_url)
    parts = urlsplit(action)
    if parts.scheme not in ("http", "https"):
        raise x.MissingValue(value, f"leads to {form.get('action')!r}, not a web address")
    fields = form_fields(form, button)
    if str(form.get("method") or "get").lower() != "post":  # a GET form: fields in the query
        url = urlunsplit(parts._replace(query=urlencode(fields), fragment=""))
        return x.to_document(record, spec, page_url, url)
    doc = x.to_document(record, spec, page_url, urlunsplit(parts._replace(fragment="")))
    return dataclasses.replace(doc, method="POST", form=fields)


def form_fields(form: Tag, button: Tag | None = None) -> tuple[tuple[str, str], ...]:
    """What a browser sends when the form is submitted by `button` (default: its first one):
    hidden inputs (CSRF tokens) included, checked boxes only, never a file."""
    fields: list[tuple[str, str]] = []
    clicked = False
    for tag in form.find_all(["input", "select", "textarea", "button"]):
        name = tag.get("name")
        kind = str(tag.get("type") or ("submit" if tag.name == "button" else "text")).lower()
        if not name or tag.has_attr("disabled") or kind in _NEVER_SENT:
            continue
        if kind in _BUTTONS:
            if not clicked and (button is None or tag is button):  # only the one clicked
                fields.append((str(name), str(tag.get("value") or "")))
                clicked = True
        elif kind in ("checkbox", "radio"):
            if tag.has_attr("checked"):
                fields.append((str(name), str(tag.get("value") or "on")))
        else:
            fields.extend((str(name), value) for value in _values(tag))
    return tuple(fields)


def _values(tag: Tag) -> list[str]:
    """The value(s) an input, a text area or a select sends."""
    if tag.name == "textarea":
        return [tag.get_text()]
    if tag.name != "select":
        return [str(tag.get("value") or "")]
    options = tag.find_all("option")
    chosen = [o for o in options if o.has_attr("selected")] or options[:1]
    if not tag.has_attr("multiple"):
        chosen = chosen[:1]
    return [str(o.get("value") if o.has_attr("value") else o.get_text(strip=True)) for o in chosen]
