"""Captcha widgets in a portal's forms: reCAPTCHA (v2), hCaptcha and Cloudflare Turnstile.

A form-based client cannot pass these checks itself. What it can do: recognise the widget,
ask for its token (a TokenRequest with the widget, its site key and the page; the solver
command or the user answers), and send the token in the field the widget's script would have
filled in a browser. `captcha_widget:` in the description says what the page does not (see
docs/form-connector.md); read here so that connectors/form/spec.py stays about the form.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bs4 import BeautifulSoup, Tag

from connectors.base import WIDGETS, TokenRequest
from connectors.form.values import Checker, Probe

KEYS = ("widget", "selector", "site_key", "field", "failure", "attempts")
# The element each widget's markup asks its script to fill: <div class="g-recaptcha" ...>.
CLASSES = {"g-recaptcha": "recaptcha", "h-captcha": "hcaptcha", "cf-turnstile": "turnstile"}
DEFAULT_SELECTOR = ".g-recaptcha, .h-captcha, .cf-turnstile, [data-sitekey]"
# Where each widget's script comes from: tells what a bare [data-sitekey] element is.
_SCRIPTS = (
    ("hcaptcha", re.compile(r"//[^/]*hcaptcha\.com/", re.I)),
    ("turnstile", re.compile(r"//challenges\.cloudflare\.com/turnstile/", re.I)),
    ("recaptcha", re.compile(r"//[^/]*(google\.com|recaptcha\.net|gstatic\.com)/recaptcha/", re.I)),
)
# A site key passed to the script in code: grecaptcha.render(el, {sitekey: "6Lc..."}).
_SITEKEY_IN_CODE = re.compile(r"""site_?key['"]?\s*[:=]\s*['"]([\w-]{10,})['"]""", re.I)
# hCaptcha's script fills g-recaptcha-response too, for servers written for reCAPTCHA.
_ALSO = {"hcaptcha": ("g-recaptcha-response",)}


@dataclass(frozen=True)
class WidgetSpec:
    """What the description says about captcha widgets (`captcha_widget:`); all optional."""

    enabled: bool = True  # `captcha_widget: false`: a widget on the page is not ours
    widget: str | None = None  # recaptcha | hcaptcha | turnstile; None: told by the page
    selector: str | None = None  # the widget's element; None: DEFAULT_SELECTOR
    site_key: str | None = None  # None: the element's data-sitekey
    field: str | None = None  # the form field that takes the token; None: the widget's own
    failure: Probe | None = None  # the portal's message about a refused check
    attempts: int = 3


@dataclass(frozen=True)
class Widget:
    """A widget found in a page: which one, its site key, and the fields its token goes in."""

    widget: str
    site_key: str
    fields: tuple[str, ...]
    invisible: bool = False  # data-size="invisible": a check that runs when the form is sent

    def request(self, page_url: str, retry: str | None) -> TokenRequest:
        """The question for its token, asked about the page showing it."""
        return TokenRequest(
            self.widget, self.site_key, page_url, retry_message=retry, invisible=self.invisible
        )


def read_widget(c: Checker, value: Any) -> WidgetSpec:
    """Read `captcha_widget:` (a mapping, or false) with the description's checker."""
    if value is False:
        return WidgetSpec(enabled=False)
    if value is not None and not isinstance(value, Mapping):
        c.problem("captcha_widget", "expected a mapping of options, or false")
        return WidgetSpec()
    m = c.mapping(value, "captcha_widget", KEYS)
    return WidgetSpec(
        widget=c.choice(m.get("widget"), "captcha_widget.widget", tuple(WIDGETS)),
        selector=c.selector(m.get("selector"), "captcha_widget.selector"),
        site_key=c.text(m.get("site_key"), "captcha_widget.site_key"),
        field=c.text(m.get("field"), "captcha_widget.field"),
        failure=c.probe(m.get("failure"), "captcha_widget.failure"),
        attempts=c.integer(m.get("attempts"), "captcha_widget.attempts", 3, 1, 10),
    )


def find_widget(page: BeautifulSoup, form: Tag | None, spec: WidgetSpec) -> Widget | None:
    """Return the widget that guards `form` (one inside it first, else one in the page).

    An element whose kind cannot be told (a bare [data-sitekey] without the widget's script)
    is not taken for one. With `widget` and `site_key` but no `selector` in the description,
    the widget is taken to be there whenever the form is (a widget the page's own code draws).
    """
    if not spec.enabled:
        return None
    elements = page.select(spec.selector or DEFAULT_SELECTOR)
    if form is not None:
        # By identity: bs4 tags compare equal when their markup is the same.
        inside = {id(e) for e in elements if any(p is form for p in e.parents)}
        elements.sort(key=lambda e: id(e) not in inside)
    for element in elements:
        kind = spec.widget or _kind_of(element, page)
        if kind is not None:
            key = spec.site_key or str(element.get("data-sitekey") or "") or _key_in_code(page)
            invisible = str(element.get("data-size") or "").lower() == "invisible"
            return _widget(kind, key, spec, invisible)
    if spec.widget and spec.site_key and spec.selector is None and form is not None:
        return _widget(spec.widget, spec.site_key, spec)
    return None


def _widget(kind: str, site_key: str, spec: WidgetSpec, invisible: bool = False) -> Widget:
    fields = (spec.field,) if spec.field else (WIDGETS[kind][1], *_ALSO.get(kind, ()))
    return Widget(kind, site_key.strip(), fields, invisible)


def _kind_of(element: Tag, page: BeautifulSoup) -> str | None:
    """Tell the widget by the element's class, else by the script the page loads."""
    for name in element.get("class") or ():
        if name in CLASSES:
            return CLASSES[name]
    sources = [str(s.get("src") or "") for s in page.find_all("script")]
    for kind, pattern in _SCRIPTS:
        if any(pattern.search(src) for src in sources):
            return kind
    return None


def _key_in_code(page: BeautifulSoup) -> str:
    """A site key given to the widget's script in the page's own code, else ""."""
    for script in page.find_all("script"):
        if found := _SITEKEY_IN_CODE.search(script.get_text()):
            return found.group(1)
    return ""
