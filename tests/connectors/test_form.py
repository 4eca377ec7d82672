"""The declarative form connector against a shop portal served on loopback.

The portal is real HTTP with what real portals do: a session cookie, a CSRF token in a hidden
input that it checks, an SMS code step, a captcha image tied to the session, paged lists.
The connector runs on the runner's own browser (gmid.portals.web.make_browser).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
import yaml

from connectors import available, load_connector
from connectors.base import CaptchaRequest, CodeRequest, PortalContext
from connectors.form.connector import FormConnector
from gmid.config.load import load_config
from gmid.errors import (
    CaptchaUnsolved,
    CodeRejected,
    ConfigError,
    PortalChanged,
    SessionExpired,
    WrongCredentials,
)
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.support.connector_contract import ConnectorContract, ContractPortal
from tests.support.portal_http import Request, serve

USER, PASSWORD, CODE = "anna@example.org", "correct horse", "123456"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
INVOICES = [  # number, date, amount, title
    ("Nr. 2024-0006", "30.06.2024", "1.234,50 €", "Strom Juni"),
    ("Nr. 2024-0005", "2024-05-31", "99,00 €", "Strom Mai"),
    ("Nr. 2024-0004", "Ende April", "−12,30 €", "Gutschrift"),
    ("Nr. 2024-0003", "31.03.2024", "0,99 €", "Strom März"),
    ("Nr. 2024-0002", "29.02.2024", "1.000.000,00 €", "Strom Februar"),
]

DESCRIPTION = """\
start: {url}/login
login:
  form: "form#login"
  fields: {{username: email, password: pass}}
  static: {{remember_me: "1"}}
  success: {{selector: "a.logout"}}
  failure: {{selector: ".alert-danger"}}
code:
  when: {{selector: "form#otp"}}
  form: "form#otp"
  field: otp
  medium: sms
  prompt: {{selector: ".otp-hint"}}
  failure: {{selector: ".error"}}
captcha:
  image: "img.captcha"
  field: captcha
  failure: {{selector: ".captcha-error"}}
documents:
  pages: ["/invoices"]
  rows: "table.invoices tbody tr"
  fields:
    id: {{selector: "td.nr", regex: "(\\\\d{{4}}-\\\\d+)"}}
    date: {{selector: "td.date", formats: ["%d.%m.%Y", "%Y-%m-%d"]}}
    number: td.nr
    amount: {{selector: "td.amount", decimal: ","}}
    title: {{selector: "td.desc"}}
  download: {{selector: "a.pdf"}}
  next: {{selector: "a.next"}}
"""


@dataclass
class Shop:
    """The portal's behaviour and state; its handler answers every request."""

    code: bool = False
    captcha: bool = False
    one_box: bool = False  # a wrong captcha is said where a wrong password is, in its words
    file_input: bool = False
    login_form: bool = True
    list_layout: str = "table"  # "table", or "changed": no table and no logout link
    per_page: int = 2
    invoices: list[tuple[str, str, str, str]] = field(default_factory=lambda: list(INVOICES))
    expire_after_page: int | None = None  # the session ends after serving this list page
    csrf: dict[str, str] = field(default_factory=dict)  # visitor cookie -> token
    captchas: dict[str, str] = field(default_factory=dict)  # visitor cookie -> answer
    sessions: dict[str, str] = field(default_factory=dict)  # sid -> "code" | "in"
    logins: list[dict[str, str]] = field(default_factory=list)  # the login forms received

    def __call__(self, request: Request):
        routes = {
            ("GET", "/login"): self.login_page,
            ("POST", "/login"): self.login,
            ("GET", "/captcha.png"): self.captcha_image,
            ("POST", "/otp"): self.otp,
            ("GET", "/otp"): self.otp_page,
            ("GET", "/dashboard"): self.dashboard,
            ("GET", "/invoices"): self.invoice_list,
        }
        if request.method == "GET" and request.path.startswith("/files/"):
            return self.file(request)
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    def state(self, request: Request) -> str | None:
        return self.sessions.get(request.cookies.get("sid", ""))

    def login_page(self, request: Request, error: str = "", captcha_error: str = ""):
        if self.state(request) == "in":
            return 302, {"Location": "/dashboard"}, b""
        visitor = request.cookies.get("visitor") or secrets.token_hex(8)
        token = self.csrf.setdefault(visitor, secrets.token_hex(8))
        if not self.login_form:
            return html("<p class='maintenance'>Wartungsarbeiten bis 18 Uhr</p>", visitor)
        multipart = ' enctype="multipart/form-data"' if self.file_input else ""
        extra = "<img class='captcha' src='/captcha.png'><input name='captcha'>" * self.captcha
        extra += "<input type='file' name='avatar' value='/etc/passwd'>" * self.file_input
        return html(
            f"<div class='alert-danger'>{error}</div>"  # empty but present, as on many portals
            + f"<p class='captcha-error'>{captcha_error}</p>" * bool(captcha_error)
            + "<form action='/search'><input name='q'></form>"
            + f"<form id='login' method='post' action='/login'{multipart}>"
            f"<input type='hidden' name='csrf' value='{token}'>"
            "<input type='email' name='email'><input type='password' name='pass'>"
            "<input type='checkbox' name='remember_me' value='1'>"
            f"{extra}<button type='submit'>Anmelden</button></form>",
            visitor,
        )

    def login(self, request: Request):
        form = fields_of(request)
        self.logins.append(form)
        visitor = request.cookies.get("visitor", "")
        if not visitor or form.get("csrf") != self.csrf.get(visitor):
            return 403, {"Content-Type": "text/html"}, "<p>CSRF token invalid</p>"
        if self.captcha and form.get("captcha") != self.captchas.pop(visitor, None):
            if self.one_box:
                return self.login_page(request, error="Anmeldung fehlgeschlagen.")
            return self.login_page(request, captcha_error="Die Zeichen stimmen nicht.")
        if form.get("email") != USER or form.get("pass") != PASSWORD:
            return self.login_page(request, error="E-Mail-Adresse oder Passwort ist falsch.")
        sid = secrets.token_hex(8)
        self.sessions[sid] = "code" if self.code else "in"
        where = "/otp" if self.code else "/dashboard"
        return 303, [("Location", where), ("Set-Cookie", f"sid={sid}; Path=/; HttpOnly")], b""

    def captcha_image(self, request: Request):
        visitor = request.cookies.get("visitor")
        if visitor not in self.csrf:
            return 403, {}, b"no session"
        answer = self.captchas[visitor] = secrets.token_hex(3)
        return 200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + answer.encode()

    def otp_page(self, request: Request, error: str = ""):
        if self.state(request) != "code":
            return 302, {"Location": "/login"}, b""
        return html(
            "<p class='otp-hint'>Wir haben einen Code an +49 *** 12 gesendet.</p>"
            + f"<p class='error'>{error}</p>" * bool(error)
            + "<form id='otp' method='post' action='/otp'><input name='otp'>"
            "<input type='checkbox' name='trust' value='yes'><button>OK</button></form>"
        )

    def otp(self, request: Request):
        if self.state(request) != "code":
            return 302, {"Location": "/login"}, b""
        if fields_of(request).get("otp") != CODE:
            return self.otp_page(request, error="Der Code ist ungültig.")
        self.sessions[request.cookies["sid"]] = "in"
        return 303, {"Location": "/dashboard"}, b""

    def dashboard(self, request: Request):
        if self.state(request) != "in":
            return 302, {"Location": "/login"}, b""
        return html(
            "<a class='logout' href='/logout'>Abmelden</a><a href='/invoices'>Rechnungen</a>"
        )

    def invoice_list(self, request: Request):
        number = int(request.query.get("page", ["1"])[0])
        if self.state(request) != "in":
            return 302, {"Location": "/login"}, b""
        if self.expire_after_page is not None and number > self.expire_after_page:
            self.sessions.clear()
            return 302, {"Location": "/login"}, b""
        if self.list_layout == "changed":
            return html("<div class='grid'><div class='card'>Strom Juni</div></div>")
        if not self.invoices:
            return html(
                "<a class='logout' href='/logout'>Abmelden</a><p class='none'>Keine Rechnungen</p>"
            )
        rows = self.invoices[(number - 1) * self.per_page : number * self.per_page]
        body = "".join(
            f"<tr><td class='nr'>{nr}</td><td class='date'>{date}</td>"
            f"<td class='amount'>{amount}</td><td class='desc'>{title}</td>"
            f"<td><a class='pdf' href='/files/{nr[-4:]}.pdf?token=x'>PDF</a></td></tr>"
            for nr, date, amount, title in rows
        )
        more = len(self.invoices) > number * self.per_page
        return html(
            "<a class='logout' href='/logout'>Abmelden</a>"
            f"<table class='invoices'><thead><tr><th>Nr.</th></tr></thead><tbody>{body}</tbody>"
            "</table>"
            + (
                f"<a class='next' href='?page={number + 1}'>weiter</a>"
                if more
                else "<a class='next disabled' href='#'>weiter</a>"
            )
        )

    def file(self, request: Request):
        if self.state(request) != "in":
            return 302, {"Location": "/login"}, b""
        return 200, {"Content-Type": "application/pdf"}, PDF


def html(body: str, visitor: str | None = None):
    headers = [("Content-Type", "text/html; charset=utf-8")]
    if visitor:
        headers.append(("Set-Cookie", f"visitor={visitor}; Path=/"))
    return 200, headers, f"<!doctype html><html><body>{body}</body></html>"


def fields_of(request: Request) -> dict[str, str]:
    """A form body's fields, urlencoded or multipart (file parts as their filename)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request.body)
        return {
            part.get_param("name", header="content-disposition"): part.get_filename()
            or part.get_content()
            for part in message.iter_parts()
        }
    return {k: v[-1] for k, v in request.form().items()}


@dataclass
class Asker:
    """Answers the portal's challenges from a script, and records what was asked."""

    answers: list = field(default_factory=list)  # texts, or functions of the request
    asked: list[CodeRequest | CaptchaRequest] = field(default_factory=list)

    def __call__(self, request):
        self.asked.append(request)
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer


def read_captcha(request: CaptchaRequest) -> str:
    """Solve the shop's captcha: its answer is written after the PNG signature."""
    return request.image[8:].decode()


def describe(url: str = "https://shop.example", **changes) -> dict:
    """The shop's description; `a__b=value` sets options["a"]["b"] (None removes it)."""
    return with_changes(yaml.safe_load(DESCRIPTION.format(url=url)), **changes)


def with_changes(options: dict, **changes) -> dict:
    """A description changed: `a__b=value` sets options["a"]["b"] (None removes it)."""
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = options
        for part in parents:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return options


@dataclass
class Setup:
    """A running shop, and connectors bound to it."""

    shop: Shop
    url: str
    requests: list[Request]
    pages: Path
    saved: list[Path] = field(default_factory=list)

    def description(self, **changes) -> dict:
        return describe(self.url, **changes)

    def connector(self, *, password=PASSWORD, ask=None, browser=None, options=None):
        def save_page(name: str, body: bytes) -> Path:
            path = self.pages / f"{name}-{len(self.saved)}.html"
            path.write_bytes(body)
            self.saved.append(path)
            return path

        ctx = PortalContext(
            portal="shop",
            username=USER,
            password=lambda: password,
            browser=browser or make_browser(HttpPolicy(timeout=10)),
            ask=ask or Asker(),
            wait_approval=lambda request, poll: None,
            save_page=save_page,
            read_body=read_body,
            options=options if options is not None else self.description(),
        )
        return FormConnector(ctx)

    def posts(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]


@pytest.fixture
def shop():
    return Shop()


@pytest.fixture
def setup(shop, tmp_path):
    with serve(shop) as portal:
        yield Setup(shop, portal.url, portal.requests, tmp_path)


# -- the contract, plain and with a code step answered as a TOTP secret would


class TestFormContract(ConnectorContract):
    @pytest.fixture(params=["plain", "sms-code"])
    def contract_portal(self, request, tmp_path):
        shop = Shop(code=request.param == "sms-code")
        with serve(shop) as portal:
            setup = Setup(shop, portal.url, portal.requests, tmp_path)

            def connect(password=None, browser=None):
                ask = Asker([CODE] * 5)
                return setup.connector(password=password or PASSWORD, ask=ask, browser=browser)

            yield ContractPortal(connect=connect, wrong_password="wrong horse")


# -- logging in


def test_login_sends_the_csrf_token_and_cookie_and_touches_nothing_else(setup):
    setup.connector().login()
    [post] = setup.posts("/login")
    form = fields_of(post)
    token = setup.shop.csrf[post.cookies["visitor"]]
    assert form == {"csrf": token, "email": USER, "pass": PASSWORD, "remember_me": "1"}
    assert not any(r.path == "/search" for r in setup.requests)
    assert setup.requests[-1].path == "/dashboard"


def test_wrong_password_carries_the_portals_words(setup):
    with pytest.raises(WrongCredentials) as info:
        setup.connector(password="wrong horse").login()
    assert info.value.portal_message == "E-Mail-Adresse oder Passwort ist falsch."
    assert "wrong horse" not in str(info.value)
    assert len(setup.posts("/login")) == 1  # a refused password is not tried again


def test_a_saved_session_makes_login_a_no_op(setup):
    first = setup.connector()
    first.login()
    second = setup.connector(browser=first.ctx.browser)
    assert second.session_valid()
    second.login()
    assert len(setup.posts("/login")) == 1


def test_guessed_fields_and_the_first_password_form(setup):
    options = setup.description(login__form=None, login__fields=None)
    setup.connector(options=options).login()
    assert fields_of(setup.posts("/login")[0])["email"] == USER


@pytest.mark.parametrize("shop", [Shop(code=True)])
def test_a_wrong_code_is_asked_again_with_the_portals_words(setup):
    ask = Asker(["000000", CODE])
    setup.connector(ask=ask).login()
    first, second = ask.asked
    assert first == CodeRequest(
        "Wir haben einen Code an +49 *** 12 gesendet.", "sms", retry_message=None
    )
    assert second.retry_message == "Der Code ist ungültig."
    assert [fields_of(r)["otp"] for r in setup.posts("/otp")] == ["000000", CODE]


@pytest.mark.parametrize("shop", [Shop(code=True)])
def test_too_many_wrong_codes_is_code_rejected(setup):
    ask = Asker(["000000"] * 10)
    with pytest.raises(CodeRejected) as info:
        setup.connector(ask=ask).login()
    assert len(ask.asked) == 3 and len(setup.posts("/otp")) == 3
    assert info.value.portal_message == "Der Code ist ungültig."


@pytest.mark.parametrize("shop", [Shop(code=True)])
def test_code_static_fields_trust_the_device(setup):
    options = setup.description(code__static={"trust": "yes"})
    setup.connector(ask=Asker([CODE]), options=options).login()
    assert fields_of(setup.posts("/otp")[0]) == {"otp": CODE, "trust": "yes"}


@pytest.mark.parametrize("shop", [Shop(captcha=True)])
def test_the_captcha_is_fetched_with_the_session_and_answered(setup):
    ask = Asker(["wrong", read_captcha])
    connector = setup.connector(ask=ask)
    connector.login()
    first, second = ask.asked
    assert isinstance(first, CaptchaRequest) and first.media_type == "image/png"
    assert first.image.startswith(b"\x89PNG") and first.retry_message is None
    assert second.retry_message == "Die Zeichen stimmen nicht."
    images = [r for r in setup.requests if r.path == "/captcha.png"]
    assert len(images) == 2 and all(r.cookies.get("visitor") for r in images)
    assert images[0].headers["referer"].endswith("/login")
    assert list(connector.documents())


@pytest.mark.parametrize("shop", [Shop(captcha=True)])
def test_a_captcha_refused_every_time_is_unsolved(setup):
    ask = Asker(["wrong"] * 10)
    with pytest.raises(CaptchaUnsolved) as info:
        setup.connector(ask=ask).login()
    assert len(ask.asked) == 3
    assert info.value.portal_message == "Die Zeichen stimmen nicht."


@pytest.mark.parametrize("shop", [Shop(captcha=True, one_box=True)])
def test_a_wrong_captcha_said_where_a_wrong_password_is_asks_the_captcha_again(setup):
    """The portal says "Anmeldung fehlgeschlagen." for both: with no captcha.failure of its
    own, a login refused after a captcha answer asks a new captcha, as tokens are asked again,
    and does not end as wrong credentials (which would stop scheduled runs)."""
    options = setup.description(captcha__failure=None)
    ask = Asker(["wrong", read_captcha])
    connector = setup.connector(ask=ask, options=options)
    connector.login()
    assert ask.asked[1].retry_message == "Anmeldung fehlgeschlagen."
    assert list(connector.documents())
    # refused every time: the password is not tried for ever, and the user is told why
    with pytest.raises(WrongCredentials) as info:
        setup.connector(ask=Asker(["wrong"] * 10), options=options).login()
    assert "does not tell the password from the captcha (captcha.failure would)" in str(info.value)


@pytest.mark.parametrize("shop", [Shop(file_input=True)])
def test_a_prefilled_file_input_uploads_nothing(setup):
    setup.connector().login()
    [post] = setup.posts("/login")
    assert post.headers["content-type"].startswith("multipart/form-data")
    assert b"filename" not in post.body and b"avatar" not in post.body
    assert fields_of(post)["email"] == USER


@pytest.mark.parametrize("shop", [Shop(login_form=False)])
def test_a_missing_login_form_is_portal_changed_with_the_page_saved(setup):
    with pytest.raises(PortalChanged) as info:
        setup.connector().login()
    assert info.value.selector == "form#login"
    assert "form#login" in str(info.value)
    assert info.value.page is not None
    assert b"Wartungsarbeiten" in Path(info.value.page).read_bytes()


def test_an_unrecognised_page_after_login_names_the_success_selector(setup):
    options = setup.description(login__success={"selector": "a.signout"})
    with pytest.raises(PortalChanged) as info:
        setup.connector(options=options).login()
    assert "login.success: selector 'a.signout' matched nothing" in str(info.value)
    assert info.value.page is not None


# -- documents


def test_documents_over_pages_with_their_fields(setup):
    connector = setup.connector()
    connector.login()
    docs = list(connector.documents())
    assert [d.id for d in docs] == ["2024-0006", "2024-0005", "2024-0004", "2024-0003", "2024-0002"]
    pages = [r.query.get("page", ["1"])[0] for r in setup.requests if r.path == "/invoices"]
    assert pages == ["1", "2", "3"]
    first = docs[0]
    assert first.url == f"{setup.url}/files/0006.pdf?token=x"
    assert str(first.date) == "2024-06-30" and first.amount == "1234.50"
    assert first.number == "Nr. 2024-0006" and first.title == "Strom Juni"
    assert str(docs[1].date) == "2024-05-31" and docs[1].amount == "99.00"
    assert docs[2].date is None and docs[2].amount == "-12.30"  # "Ende April"
    assert docs[4].amount == "1000000.00"
    assert connector.download(first) == (PDF, "application/pdf")


def test_max_pages_bounds_a_list(setup):
    connector = setup.connector(options=setup.description(documents__max_pages=2))
    connector.login()
    assert len(list(connector.documents())) == 4


def test_a_list_page_that_is_gone_is_portal_changed(setup):
    connector = setup.connector(options=setup.description(documents__pages=["/rechnungen"]))
    connector.login()
    with pytest.raises(PortalChanged, match="HTTP 404"):
        list(connector.documents())


def test_the_default_id_is_the_download_url(setup):
    connector = setup.connector(options=setup.description(documents__fields__id=None))
    connector.login()
    assert [d.id for d in connector.documents()][:2] == [
        f"{setup.url}/files/0006.pdf?token=x",
        f"{setup.url}/files/0005.pdf?token=x",
    ]


@pytest.mark.parametrize("shop", [Shop(invoices=[])])
def test_an_empty_list_needs_its_empty_marker_else_it_is_portal_changed(setup):
    # Without documents.empty a vanished table would pass for "no documents" run after run.
    connector = setup.connector()
    connector.login()
    with pytest.raises(PortalChanged, match=r"set documents\.empty"):
        list(connector.documents())
    connector = setup.connector(options=describe(setup.url, documents__empty="p.none"))
    connector.login()
    assert list(connector.documents()) == []


@pytest.mark.parametrize("shop", [Shop(list_layout="changed")])
def test_a_list_page_that_is_neither_rows_nor_logged_in_is_portal_changed(setup):
    connector = setup.connector()
    connector.login()
    with pytest.raises(PortalChanged) as info:
        list(connector.documents())
    assert "table.invoices tbody tr" in str(info.value)
    assert b"class='card'" in Path(info.value.page).read_bytes()


def test_a_row_without_its_download_link_names_the_selector(setup):
    options = setup.description(documents__download={"selector": "a.zip"})
    connector = setup.connector(options=options)
    connector.login()
    with pytest.raises(PortalChanged) as info:
        list(connector.documents())
    assert info.value.selector == "a.zip"
    assert "documents.download: selector 'a.zip' matched nothing" in str(info.value)


@pytest.mark.parametrize("shop", [Shop(expire_after_page=1)])
def test_a_list_page_that_goes_back_to_login_is_session_expired(setup):
    connector = setup.connector()
    connector.login()
    docs = connector.documents()
    assert next(docs).id == "2024-0006"
    with pytest.raises(SessionExpired):
        list(docs)


def test_session_valid_without_cookies_is_false(setup):
    assert setup.connector().session_valid() is False
    assert not setup.posts("/login")


# -- the description, checked at config time


def problems(options: dict) -> dict[str, str]:
    return dict(FormConnector.check_options(options))


def test_a_good_description_has_no_problems():
    assert problems(describe()) == {}
    smallest = {
        "start": "https://p.example/",
        "documents": {"pages": "/x", "rows": "tr", "download": "a"},
    }
    assert problems(smallest) == {}


def test_description_problems_are_all_reported_with_their_paths():
    options = describe(start="/login", documents__row="tr")
    options["documents"]["rows"] = "table["
    options["documents"]["fields"]["id"]["regex"] = r"\d+"
    options["documents"]["fields"]["number"] = {"selector": "td", "regex": "(\\d+"}
    options["documents"]["fields"]["date"]["formats"] = ["%d.%m", "%Q"]
    options["documents"]["fields"]["title"] = {"selector": "td", "formats": ["%Y"]}
    options["code"]["medium"] = "smss"
    options["login"]["static"] = {"remember_me": True}
    found = problems(options)
    assert found.pop("start").startswith("expected an absolute URL")
    assert found.pop("documents.row") == "unknown option; did you mean 'rows'?"
    assert found.pop("documents.rows").startswith("invalid CSS selector 'table['")
    assert found.pop("documents.fields.id.regex").startswith("needs a group")
    assert found.pop("documents.fields.number.regex").startswith("invalid regular expression")
    assert "no year" in found.pop("documents.fields.date.formats[0]")
    assert "bad directive" in found.pop("documents.fields.date.formats[1]")
    assert found.pop("documents.fields.title.formats").startswith("unknown option")
    assert found.pop("code.medium") == "unknown value 'smss'; did you mean 'sms'?"
    assert "quote it" in found.pop("login.static.remember_me")
    assert found == {}


def test_missing_parts_and_planned_types():
    found = problems(
        {"login": {"type": "json"}, "documents": {"type": "jsn", "next": "a["}, "code": {}}
    )
    assert found["documents.next.selector"].startswith("invalid CSS selector")
    assert found["code"].startswith("give `when:`")
    assert found["start"].startswith("missing")
    assert found["login.url"].startswith("missing: the address the login is sent to")
    assert found["documents.type"] == "unknown value 'jsn'; did you mean 'json'?"
    assert {"documents.pages", "documents.rows", "documents.download"} <= found.keys()
    assert problems([]) == {"": "expected a mapping of options, got a list"}


def test_the_config_file_names_the_line_of_each_problem(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path}/state\n"
        "portals:\n"
        "  - name: shop\n"
        "    form:\n"
        "      start: /login\n"  # 5
        "      login:\n"
        "        success: {selector: 'a['}\n"  # 7
        "      documents:\n"
        "        pages: [/invoices]\n"  # 9: the documents mapping starts here
        "        row: tr\n"  # 10
        "        download: a.pdf\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    lines = {str(p).split(": ", 2)[0].rsplit(":", 1)[1]: str(p) for p in info.value.problems}
    assert "portals[0].form.start: expected an absolute URL" in lines["5"]
    assert "portals[0].form.login.success.selector: invalid CSS selector" in lines["7"]
    assert "portals[0].form.documents.rows: missing" in lines["9"]
    assert "portals[0].form.documents.row: unknown option; did you mean 'rows'?" in lines["10"]


def test_the_connector_refuses_a_bad_description_when_used_directly(tmp_path):
    setup = Setup(Shop(), "https://shop.example", [], tmp_path)
    with pytest.raises(ConfigError, match="portal shop: documents: missing"):
        setup.connector(options={"start": setup.url})


# -- the registry


def test_the_registry_finds_the_form_connector_by_module():
    assert load_connector("form") is FormConnector
    assert "form" in available()
    assert "base" not in available()
    with pytest.raises(KeyError, match=r"unknown connector 'frm'; did you mean 'form'\?"):
        load_connector("frm")
    with pytest.raises(KeyError, match="known: "):
        load_connector("../etc")


def test_the_registry_finds_connectors_by_entry_point(tmp_path, monkeypatch):
    (tmp_path / "shopconn.py").write_text(
        "from connectors.base import Connector\n"
        "class Shop(Connector):\n"
        "    name = 'shop'\n"
        "    def login(self): pass\n"
        "    def documents(self): return iter(())\n"
    )
    info = tmp_path / "shopconn-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shopconn\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[gmid.connectors]\nshop = shopconn:Shop\nbroken = shopconn:Nothing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_connector("shop").__name__ == "Shop"
    assert {"form", "shop", "broken"} <= set(available())
    with pytest.raises(KeyError, match="cannot be loaded"):
        load_connector("broken")


def test_progress_lines_show_which_list_page_without_its_tokens():
    from connectors.form.extract import page_url

    assert page_url("https://x.example/bills?page=2") == "https://x.example/bills?page=2"
    assert (
        page_url("https://x.example/bills?sid=abc123&Seite=3&token=s3cr3t#top")
        == "https://x.example/bills?sid=…&Seite=3&token=…"
    )
    assert page_url("https://x.example/bills") == "https://x.example/bills"
