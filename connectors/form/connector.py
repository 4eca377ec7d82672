"""The declarative form connector: a portal described in YAML, with no Python.

The description (`options`, see docs/form-connector.md) names a login form (or its pages, or
a JSON login API: connectors.form.login), perhaps a code form and a captcha, and the pages
that list documents; captcha widgets (reCAPTCHA, hCaptcha, Turnstile) are recognised by
themselves. This module only navigates: it opens
the pages the description names and submits the forms it finds there; reading the pages is
done by the pure functions of connectors.form.extract.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes, urldefrag, urljoin, urlsplit

import mechanicalsoup
import requests
from bs4 import BeautifulSoup, Tag

from connectors.base import (
    CaptchaRequest,
    CodeRequest,
    Connector,
    RemoteDocument,
)
from connectors.form import extract as x
from connectors.form import periods, trace
from connectors.form.approval import ApprovalStep
from connectors.form.before import BeforeList
from connectors.form.detail import Details
from connectors.form.html import charset, parse_html
from connectors.form.jsonlist import ACCEPT, JsonList
from connectors.form.loginspec import PROMPTS, secret_options
from connectors.form.oauth import OAuthLogin
from connectors.form.spec import FormSpec, read_spec
from connectors.form.values import Probe
from connectors.form.widgets import Widget, find_widget
from gmid.errors import (
    CaptchaUnsolved,
    CodeRejected,
    ConfigError,
    DownloadRejected,
    PortalChanged,
    Problem,
    SessionExpired,
    WrongCredentials,
)

logger = logging.getLogger(__name__)

_PASSWORD = 'input[type="password" i]'


class FormConnector(OAuthLogin, ApprovalStep, BeforeList, Connector):
    """A portal described by a login form, an optional code step and lists of documents."""

    name = "form"

    def __init__(self, ctx):
        super().__init__(ctx)
        spec, problems = read_spec(ctx.options)
        if spec is None:
            # The config loader reports these with file and line; this is for direct use.
            where = f"portal {ctx.portal}"
            raise ConfigError([Problem(where, None, path, message) for path, message in problems])
        self.spec: FormSpec = spec
        self.browser: mechanicalsoup.StatefulBrowser = ctx.browser
        self._response: requests.Response | None = None
        self._listing = False  # a 401 now means the login ended (the token expired)
        self.headers = self._install_headers()  # `headers:`, and the login's token
        self.browser.session.hooks["response"].append(self._login_ended)
        trace.watch(ctx, self.browser.session)
        self._json = None
        self._form_pages = {}  # `download: {form}`: the list page of each document's form
        if spec.documents.json is not None:
            login_shown = lambda: self._login_form() is not None  # noqa: E731
            self._json = JsonList(spec.documents, ctx, self._open_json, login_shown, self._changed)
        self._details = None  # documents.detail: the page each row links to
        if spec.documents.detail is not None:
            self._details = Details(
                spec.documents, ctx, self._open_detail, self._login_in, self._changed
            )

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Return the problems of a portal description as (option path, message) pairs."""
        return read_spec(options)[1]

    @classmethod
    def secret_options(cls, options: Mapping[str, Any]) -> list[str]:
        """The `secret:` references of `headers:` (API keys)."""
        return secret_options(options)

    # -- what the runner calls

    def session_valid(self) -> bool:
        """Tell whether the first list page opens logged in with the saved cookies."""
        if self.spec.login.type != "form" or self.spec.login.session_params:
            return False  # an API's token (or a session in the address) lives one run
        self._listing = True
        try:
            if self._json is not None:
                return self._json.session_valid(self._list_urls()[0])
            self._open(self._list_urls()[0])
        except SessionExpired:
            return False
        if self._login_form() is not None:
            return False
        rows = self.page.select(self.spec.documents.rows)
        return self._shows(self.spec.login.success) or bool(rows)

    def login(self) -> None:
        """Log in through the login form, then the code step if the portal asks for one."""
        self._listing = False
        if self.spec.login.type == "json":
            return self._api_login()
        if self.spec.login.type == "none":
            return None
        if self.spec.login.type == "oauth2":
            return self._oauth_login()
        self._open(self.spec.start)
        if self._logged_in():
            logger.info("%s: the saved session is still logged in", self.ctx.portal)
            return self._keep_session_params()
        if self.spec.login.steps:
            self._step_login()
        else:
            self._submit_login()
        if self.spec.code is not None and self._shows(self.spec.code.when):
            self._code_step()
        if self.spec.approval is not None and self._shows(self.spec.approval.when):
            self._approval_step()
        if not self._logged_in():
            success = self.spec.login.success
            raise self._changed(
                f"{self._success_missed()} after the login", selector=success and success.selector
            )
        self._keep_session_params()

    def documents(self) -> Iterator[RemoteDocument]:
        """Yield the documents of every list page, following `next` links."""
        seen: set[str] = set()
        self._listing = True
        for url, may_be_empty in self._list_plan():  # the periods, after documents.before
            if self._json is not None:
                for doc in self._json.documents(url, seen, may_be_empty):
                    self._listed_any = True
                    yield from self._expand(doc)
                continue
            for page_url, records in self._html_list(url, may_be_empty):
                self._listed_any = self._listed_any or bool(records)
                for record in records:
                    try:
                        doc = self._document(record, page_url)
                    except x.MissingValue as e:
                        raise self._changed(str(e), selector=e.value.selector) from None
                    if doc.id not in seen:  # pages that overlap list a document twice
                        seen.add(doc.id)
                        yield from self._expand(doc)

    def _expand(self, row: RemoteDocument) -> Iterator[RemoteDocument]:
        """The documents of a list row: itself, or those of its detail page."""
        if self._details is None:
            yield row
        else:
            yield from self._details.expand(row)

    def download(self, doc: RemoteDocument) -> tuple[bytes, str | None]:
        """Fetch a document (or take it from its JSON row); an HTML page instead of it names
        the option that led there."""
        if self._details is not None:
            doc = self._details.resolve(doc)
        inline = self._details.inline(doc) if self._details is not None else None
        if inline is None and self._json is not None:
            inline = self._json.inline(doc)
        fetched = (inline, None) if inline is not None else self._form_download(doc)
        data, content_type = fetched or super().download(doc)
        if x.looks_like_html(data, content_type):
            if parse_html(data[: 1 << 20], encoding=charset(content_type)).select_one(_PASSWORD):
                raise SessionExpired(f"{self.ctx.portal}: a download showed the login form")
            option = (
                self._json.json.download_option if self._json else self.spec.documents.download.path
            )
            option = "documents.detail.download" if self._details else option
            raise DownloadRejected(
                f"{self.ctx.portal}: the portal sent an HTML page instead of a document for "
                f"{x.public_url(doc.url)}: check {option}, which must lead to the file itself"
            )
        return data, content_type

    def _document(self, record: x.HtmlRecord, page_url: str) -> RemoteDocument:
        if self.spec.documents.download_form is not None:  # fetched by submitting its form
            return self._form_document(record, page_url)
        return x.to_document(record, self.spec.documents, page_url)

    # -- the steps

    def _fill_login(self) -> tuple[Tag, mechanicalsoup.Form]:
        """Find the login form, select it and fill in the user name, password and static fields.

        Returns the form as found and the one selected for submitting.
        """
        login = self.spec.login
        form = self._login_form()
        looked = login.form or "a form with a password input"
        trace.matched(self.ctx, "login.form", looked, [form] if form else [], self.browser.url)
        if form is None:
            what = f"login.form: selector {login.form!r}" if login.form else "login.form"
            raise self._changed(f"{what} found no login form", selector=login.form or _PASSWORD)
        filled = self._select(form)
        user, password = x.guess_login_fields(form)
        user, password = login.username or user, login.password or password
        if user is None or password is None:
            missing = "username" if user is None else "password"
            raise self._changed(f"login.fields.{missing}: cannot tell which input takes it")
        trace.note(self.ctx, f"login.fields: user name in {user!r}, password in {password!r}")
        self._set(filled, user, self.ctx.username, "login.fields.username")
        self._set(filled, password, self.ctx.password(), "login.fields.password")
        for name, value in login.static:
            self._set(filled, name, value, f"login.static.{name}", force=True)
        return form, filled

    def _submit_login(self) -> None:
        """Fill and submit the login form, answering captchas, until the portal takes it.

        A captcha is an image to read (`captcha:`) or a widget such as reCAPTCHA, whose token
        comes from the solver command or the user (`captcha_widget:`, found without it too).
        """
        captcha, wspec = self.spec.captcha, self.spec.widget
        limits = {"image": captcha.attempts if captcha else 0, "token": wspec.attempts}
        asked = {"image": 0, "token": 0}
        retry: dict[str, str | None] = {"image": None, "token": None}
        # the login failure's words after a captcha answer: the password, or the captcha?
        unsure: dict[str, str | None] = {"image": None, "token": None}
        # Every round but the first needs a captcha answer, so that a portal that keeps
        # refusing (even without showing a new image) cannot keep us looping.
        for _ in range(1 + limits["image"] + limits["token"]):
            form, filled = self._fill_login()
            image, widget = self._image_shown(), self._widget(form)
            if (image and asked["image"] >= limits["image"]) or (
                widget and asked["token"] >= limits["token"]
            ):
                break
            if image:
                asked["image"] += 1
                answer = self._ask_captcha(retry["image"]).strip()
                self._set(filled, captcha.field, answer, "captcha.field")
            if widget is not None:
                asked["token"] += 1
                self._answer_widget(filled, widget, retry["token"])
            self._submit()
            refused = self._captcha_refused(image, widget is not None)
            if refused is not None:
                kind, text, ambiguous = refused
                retry[kind] = text or None
                unsure[kind] = text if ambiguous else None
                self._back_to_login()
                continue
            if (text := self._text(self.spec.login.failure)) is not None:
                raise WrongCredentials(
                    f"{self.ctx.portal}: the portal refused the user name or password",
                    portal_message=text or None,
                )
            form = self._login_form()
            if form is None or not (self._image_shown() or self._widget(form)):
                return  # logged in, or the login form without a captcha: login() judges
            # else a captcha that is shown only after a first submit (or refused without words)
        kind = "token" if asked["token"] >= limits["token"] else "image"
        what = "captcha tokens" if kind == "token" else "captcha answers"
        if unsure[kind] is not None:
            option = "captcha_widget.failure" if kind == "token" else "captcha.failure"
            raise WrongCredentials(
                f"{self.ctx.portal}: the portal refused the login {asked[kind]} times, each "
                f"with new {what}; its message does not tell the password from the captcha "
                f"({option} would), so the password is not tried again",
                portal_message=unsure[kind] or None,
            )
        raise CaptchaUnsolved(
            f"{self.ctx.portal}: the portal refused {asked[kind]} {what}",
            portal_message=retry[kind],
        )

    def _captcha_refused(self, image: bool, widget: bool) -> tuple[str, str, bool] | None:
        """After a submit: which captcha the portal refused ("image" or "token"), its words,
        and whether they are only the login failure's, or None when no captcha was refused.

        Where no words of its own are set for a captcha (captcha.failure,
        captcha_widget.failure), the login failure after a captcha answer counts as a refused
        captcha: many portals say "wrong password" and "wrong characters" in one place.
        """
        captcha, wspec, login = self.spec.captcha, self.spec.widget, self.spec.login
        if captcha is not None and (text := self._text(captcha.failure)) is not None:
            return "image", text, False
        if widget and (text := self._text(wspec.failure)) is not None:
            return "token", text, False
        for kind, shown, own_words in (
            ("image", image, captcha.failure if captcha else None),
            ("token", widget, wspec.failure),
        ):
            if shown and own_words is None and (text := self._text(login.failure)) is not None:
                return kind, text, True
        return None

    def _code_step(self) -> None:
        """Ask for the one-time code and submit it, again while the portal refuses it."""
        code = self.spec.code
        assert code is not None
        retry = token_retry = None
        for _ in range(code.attempts):
            has = f'input[name="{_quoted(code.field)}"]' if code.field else "input"
            form = x.find_form(self.page, code.form, has)
            trace.matched(self.ctx, "code.form", code.form or has, [form] if form else [])
            if form is None:
                raise self._changed(
                    f"code.form: selector {code.form!r} found no form on the code page",
                    selector=code.form or has,
                )
            field = code.field or x.guess_code_field(form)
            if field is None:
                raise self._changed("code.field: cannot tell which input takes the code")
            prompt = self._text(code.prompt) or PROMPTS[code.medium]
            widget = self._widget(form)
            answer = self.ctx.ask(CodeRequest(prompt, code.medium, retry_message=retry))
            filled = self._select(form)
            self._set(filled, field, answer.strip(), "code.field")
            for name, value in code.static:
                self._set(filled, name, value, f"code.static.{name}", force=True)
            if widget is not None:  # asked after the code: a token is valid for minutes only
                self._answer_widget(filled, widget, token_retry)
            self._submit()
            retry = self._text(code.failure)
            if widget is not None and retry is None:
                retry = token_retry = self._text(self.spec.widget.failure)
            if retry is None and not self._shows(code.when):
                return
            retry = retry or None
        raise CodeRejected(
            f"{self.ctx.portal}: the portal refused {code.attempts} codes", portal_message=retry
        )

    def _widget(self, form: Tag | None) -> Widget | None:
        return find_widget(self.page, form, self.spec.widget)

    def _image_shown(self) -> bool:
        captcha = self.spec.captcha
        return captcha is not None and self.page.select_one(captcha.image) is not None

    def _back_to_login(self) -> None:
        """After a refused captcha: open the login page again unless the answer shows it."""
        if self._login_form() is None:
            self._open(self.spec.start)

    def _answer_widget(self, form: mechanicalsoup.Form, widget: Widget, retry: str | None) -> None:
        """Ask for the widget's token and put it in its field(s), added if the page has none
        (the widget's script would have made them)."""
        token = self.ctx.ask(widget.request(x.public_url(self.browser.url), retry)).strip()
        for name in widget.fields:
            self._set(form, name, token, "captcha_widget.field", force=True)

    def _ask_captcha(self, retry: str | None) -> str:
        """Fetch the captcha image with the session's cookies and ask for its text."""
        assert self.spec.captcha is not None
        img = self.page.select_one(self.spec.captcha.image)
        src = str(img.get("src") or "")
        if src.startswith("data:"):
            head, _, data = src.partition(",")
            media_type = head[5:].split(";")[0] or "application/octet-stream"
            image = base64.b64decode(data) if head.endswith(";base64") else unquote_to_bytes(data)
        elif src:
            url = urljoin(self.browser.url, src)
            headers = {"Referer": self.browser.url}
            response = self.browser.session.get(url, headers=headers, stream=True)
            if response.status_code != 200:
                response.close()
                raise self._changed(f"captcha.image: HTTP {response.status_code} for the image")
            image = self.ctx.read_body(response)
            content_type = response.headers.get("Content-Type") or "application/octet-stream"
            media_type = content_type.split(";")[0].strip()
        else:
            raise self._changed("captcha.image: the image has no src", selector=img.name)
        return self.ctx.ask(CaptchaRequest(image=image, media_type=media_type, retry_message=retry))

    def _html_list(
        self, url: str, may_be_empty: bool = False
    ) -> Iterator[tuple[str, list[x.Record]]]:
        """Yield (page URL, rows) for one list page and the pages its `next` links lead to;
        `may_be_empty`: one period of several, whose first page may list nothing."""
        spec, visited = self.spec.documents, set()
        for number in range(1, spec.max_pages + 1):
            self.ctx.progress(f"reading {x.page_url(url)}")
            self._open(url)
            visited.update({urldefrag(url).url, urldefrag(self.browser.url).url})
            if self._login_form() is not None:
                raise SessionExpired(f"{self.ctx.portal}: {x.public_url(url)} shows the login form")
            rows = x.html_rows(self.page, spec.rows)
            trace.rows(self.ctx, "documents.rows", spec.rows, rows, spec, self.browser.url)
            if not rows and number == 1 and not may_be_empty and not self._shows(spec.empty):
                # A changed layout would otherwise pass for "no documents", run after run:
                # an empty list must be recognised as such (documents.empty).
                if self._shows(self.spec.login.success):
                    hint = (
                        "if the portal really lists no documents, set documents.empty to "
                        "its 'no documents' message"
                    )
                else:
                    hint = self._success_missed()
                raise self._changed(
                    f"documents.rows: selector {spec.rows!r} matched nothing, and {hint}",
                    selector=spec.rows,
                )
            yield self.browser.url, rows
            href = x.read(x.HtmlRecord(self.page), spec.next) if spec.next else None
            if spec.next is not None:
                found = [href] if href else []
                trace.matched(self.ctx, "documents.next", spec.next.selector, found)
            if href is None:
                return
            # "#" or "?page=3#top" lead back to a page already read: the end of the list.
            url = urldefrag(urljoin(self.browser.url, href)).url
            if url in visited or urlsplit(url).scheme not in ("http", "https"):
                return
        logger.warning("%s: stopped after documents.max_pages pages", self.ctx.portal)

    # -- pages and forms

    @property
    def page(self) -> BeautifulSoup:
        """The current page (empty when the portal answered with something else than HTML)."""
        page = self.browser.page
        return page if page is not None else parse_html("")

    def _list_urls(self) -> list[str]:
        newest = next(periods.each(self.spec.documents.periods))  # the current one, or None
        return [
            urljoin(self.spec.start, periods.fill(page, newest))
            for page in self.spec.documents.pages
        ]

    def _open(self, url: str) -> None:
        """Open a page the description names."""
        self._response = self.browser.open(url)
        self._check_status(x.public_url(url))

    def _open_json(self, url: str) -> requests.Response:
        """Open a JSON list's URL, asking for JSON."""
        self._response = self.browser.open(url, headers=ACCEPT)
        self._check_status(x.public_url(url))
        return self._response

    def _open_detail(self, url: str, kind: str) -> requests.Response:
        """Open a detail page (HTML or JSON) beside the list page, which stays current."""
        self._response = self.browser.session.get(url, headers=ACCEPT if kind == "json" else None)
        self._check_status("documents.detail.link")
        return self._response

    def _login_in(self, page: BeautifulSoup) -> bool:
        return x.find_form(page, self.spec.login.form, _PASSWORD) is not None

    def _submit(self) -> None:
        """Submit the selected form."""
        self._response = self.browser.submit_selected()
        self._check_status("the form's answer")

    def _check_status(self, what: str) -> None:
        """A page that is gone means the description no longer fits the portal.

        Network failures, 429 and 5xx are PortalUnavailable already: the runner's session
        (gmid.portals.web.PortalSession) raises it for every request.
        """
        assert self._response is not None
        if self._response.status_code in (404, 410):
            status = self._response.status_code
            raise self._changed(f"{what}: HTTP {status} at {x.public_url(self._response.url)}")

    def _select(self, form: Tag) -> mechanicalsoup.Form:
        """Select a form to fill; its file inputs are disabled, so that nothing is uploaded."""
        for tag in form.select('input[type="file" i]'):
            tag["disabled"] = ""  # a disabled input is not sent at all
        return self.browser.select_form(form)

    def _set(
        self, form: mechanicalsoup.Form, name: str, value: str, option: str, force: bool = False
    ) -> None:
        """Fill one input of a form; an input that is missing (unless forced) means a change."""
        tags = form.form.find_all(["input", "textarea", "select"], attrs={"name": name})
        if any(str(t.get("type", "")).lower() == "file" for t in tags):
            raise self._changed(f"{option}: {name!r} is a file input, which gmid never fills")
        if not tags and not force:
            raise self._changed(f"{option}: no input named {name!r} in the form", selector=name)
        try:
            form.set(name, value, force=force)
        except mechanicalsoup.LinkNotFoundError as e:
            raise self._changed(f"{option}: {e}") from None

    def _login_form(self) -> Tag | None:
        for step in self.spec.login.steps:  # a login in steps: any of its pages' forms
            if (form := x.find_form(self.page, step.form, _PASSWORD)) is not None:
                return form
        return x.find_form(self.page, self.spec.login.form, _PASSWORD)

    def _logged_in(self) -> bool:
        """Tell whether the current page is a logged-in one (a page with the login form is not)."""
        success = self.spec.login.success
        return (success is None or self._shows(success)) and self._login_form() is None

    def _shows(self, probe: Probe | None) -> bool:
        trace.probe(self.ctx, probe, self.page, self.browser.url)
        return x.matches(self.page, self.browser.url, probe)

    def _text(self, probe: Probe | None) -> str | None:
        trace.probe(self.ctx, probe, self.page, self.browser.url)
        return x.probe_text(self.page, self.browser.url, probe)

    def _success_missed(self) -> str:
        """Say what was looked for to recognise a logged-in page, and that it was not found."""
        probe = self.spec.login.success
        if probe is None:
            return (
                "the page cannot be told logged in: set login.success to what only logged-in "
                "pages show, e.g. {selector: 'a.logout'}"
            )
        return f"{probe.path}: {probe.describe()} matched nothing"

    def _changed(
        self, message: str, selector: str | None = None, url: str | None = None
    ) -> PortalChanged:
        """Save the current page (or answer, from `url`) for diagnosis and return the
        PortalChanged that names it."""
        body = self._response.content if self._response is not None else b""
        url = url or self.browser.url
        name = urlsplit(url or "").path.strip("/").replace("/", "_") or "page"
        try:
            saved = str(self.ctx.save_page(name, body))
        except OSError as e:  # the diagnosis is a bonus; the error itself must still be raised
            logger.warning("%s: could not save the page: %s", self.ctx.portal, e)
            saved = None
        where = x.public_url(url)
        return PortalChanged(
            f"{self.ctx.portal}: {message} (on {where})", selector=selector, page=saved
        )


def _quoted(text: str) -> str:
    """Escape text for a double-quoted CSS attribute value."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
