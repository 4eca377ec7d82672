"""Logins beyond one HTML form, each against a portal served for real on loopback.

- an "identifier first" portal: the e-mail on one page, the password on the next;
- a JSON login API that wants the CSRF token of the login page's <meta> in a header, and hands
  out bearer tokens that may expire in the middle of a list;
- an API that reads its CSRF token from a cookie (XSRF-TOKEN, as Laravel and Angular do);
- an API-key portal: no login at all, a key in a header.

The connector runs on the runner's own browser (gmid.portals.web.make_browser); the whole run,
with its redactor, logs and saved pages, is tested through a real daemon at the end.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from connectors.base import PortalContext
from connectors.form.connector import FormConnector
from gmid.config.load import load_config
from gmid.errors import (
    CodeRejected,
    ConfigError,
    PortalChanged,
    SessionExpired,
    WrongCredentials,
)
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.conftest import ROOT, make_daemon_dir
from tests.support.portal_http import Request, serve

USER = "anna@example.org"
PASSWORD = 'pa"ss\\wört {x} </script>'  # JSON needs escaping; a format would choke on {x}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
API_KEY = "gk_live_" + "7f3a9c2e5b1d4f6a8c0e2b4d6f8a1c3e"


TOTP_CODE = "424242"  # the code the 2FA API accepts


def html(body: str, headers: list[tuple[str, str]] | None = None):
    return (
        200,
        [("Content-Type", "text/html; charset=utf-8"), *(headers or [])],
        f"<!doctype html><html><head></head><body>{body}</body></html>",
    )


def as_json(data, status: int = 200):
    return status, {"Content-Type": "application/json"}, json.dumps(data)


def invoice_table(base: str = "", echo: str = "") -> str:
    rows = "".join(
        f"<tr><td class='nr'>2024-{n}</td><td><a class='pdf' href='{base}/files/{n}.pdf'>PDF</a>"
        "</td></tr>"
        for n in (1, 2)
    )
    return f"<p class='echo'>{echo}</p><table class='invoices'><tbody>{rows}</tbody></table>"


@dataclass
class Portal:
    """Every portal of this file in one server; each test uses its part."""

    url: str = ""
    csrf: dict[str, str] = field(default_factory=dict)  # visitor cookie -> token
    tokens: set[str] = field(default_factory=set)  # the bearer tokens still valid
    sessions: set[str] = field(default_factory=set)  # sid cookies of the two-step portal
    expire_after: int | None = None  # the first token ends after this many list pages
    list_pages: int = 0
    echo: bool = False  # the list echoes what it was sent (a careless portal)
    other_host: str = ""  # where download links lead, when not here
    jwt_cookie: bool = False  # the login's answer sets its token as a cookie too

    def __call__(self, request: Request):
        routes = {
            ("GET", "/signin"): self.identifier_page,
            ("POST", "/signin/identifier"): self.identifier,
            ("POST", "/signin/password"): self.password,
            ("GET", "/steps/invoices"): self.step_invoices,
            ("GET", "/login"): self.login_page,
            ("GET", "/sanctum/csrf-cookie"): self.csrf_cookie,
            ("POST", "/api/login"): self.api_login,
            ("POST", "/api/login-form"): self.api_login_form,
            ("POST", "/api/login-2fa"): self.api_login_2fa,
            ("GET", "/invoices"): self.invoices,
            ("GET", "/keyed/invoices"): self.keyed_invoices,
            ("GET", "/keyed/moved"): lambda r: (
                302,
                {"Location": f"{self.other_host}/keyed/invoices"},
                b"",
            ),
            ("POST", "/api/deep"): lambda r: (
                200,
                {"Content-Type": "application/json"},
                "[" * 100_000,
            ),
        }
        if request.path.startswith("/files/"):
            return self.file(request)
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    # -- the two-step portal

    def identifier_page(self, request: Request):
        return html(
            "<form id='identifier' method='post' action='/signin/identifier'>"
            "<input type='email' name='email'><button>Weiter</button></form>"
        )

    def identifier(self, request: Request):
        email = request.form().get("email", [""])[0]
        if email != USER:
            return html(
                "<p class='error'>Diese E-Mail-Adresse kennen wir nicht.</p>"
                "<form id='identifier' method='post' action='/signin/identifier'>"
                "<input type='email' name='email'></form>"
            )
        return self._password_page(email)

    def _password_page(self, email: str, error: str = ""):
        return html(
            f"<p class='error'>{error}</p>"
            "<form id='password' method='post' action='/signin/password'>"
            f"<input type='hidden' name='email' value='{email}'>"
            "<input type='password' name='pw'><button>Anmelden</button></form>"
        )

    def password(self, request: Request):
        form = request.form()
        email, pw = form.get("email", [""])[0], form.get("pw", [""])[0]
        if email != USER or pw != PASSWORD:
            return self._password_page(email, "Das Passwort ist falsch.")
        sid = secrets.token_hex(16)
        self.sessions.add(sid)
        return 302, {"Location": "/steps/invoices", "Set-Cookie": f"sid={sid}; Path=/"}, b""

    def step_invoices(self, request: Request):
        if request.cookies.get("sid") not in self.sessions:
            return 302, {"Location": "/signin"}, b""
        return html("<a class='logout' href='/logout'>Abmelden</a>" + invoice_table())

    # -- the JSON login API

    def login_page(self, request: Request):
        visitor = request.cookies.get("visitor") or secrets.token_hex(8)
        token = self.csrf.setdefault(visitor, secrets.token_hex(20))
        headers = {"Content-Type": "text/html", "Set-Cookie": f"visitor={visitor}; Path=/"}
        return (
            200,
            headers,
            (
                f"<html><head><meta name='csrf-token' content='{token}'></head>"
                "<body><div id='app'></div></body></html>"
            ),
        )

    def csrf_cookie(self, request: Request):
        token = secrets.token_hex(20) + "=="  # the cookie carries it URL-encoded
        self.csrf["xsrf"] = token
        return 204, {"Set-Cookie": f"XSRF-TOKEN={quote(token)}; Path=/"}, b""

    def _credentials_refused(self):
        return as_json({"error": {"message": "E-Mail oder Passwort ist falsch."}}, 401)

    def _new_token(self):
        token = "eyJ" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        status, headers, body = as_json({"data": {"access_token": token, "user": {"email": USER}}})
        if self.jwt_cookie:
            headers = {**headers, "Set-Cookie": f"jwt={token}; Path=/; HttpOnly"}
        return status, headers, body

    def api_login(self, request: Request):
        csrf = self.csrf.get(request.cookies.get("visitor", ""))
        xsrf = self.csrf.get("xsrf")
        checked = (csrf and request.headers.get("x-csrf-token") == csrf) or (
            xsrf and request.headers.get("x-xsrf-token") == xsrf
        )
        if not checked or request.headers.get("content-type") != "application/json":
            return as_json({"message": "CSRF token mismatch."}, 419)
        body = json.loads(request.body)
        if body != {"auth": {"email": USER, "password": PASSWORD}, "remember": True}:
            return self._credentials_refused()
        return self._new_token()

    def api_login_form(self, request: Request):
        form = request.form()
        if form.get("email") != [USER] or form.get("password") != [PASSWORD]:
            return self._credentials_refused()
        return self._new_token()

    def api_login_2fa(self, request: Request):
        """An API that asks for the code of the user's app, in the same body sent again."""
        body = json.loads(request.body)
        if (body.get("login"), body.get("password")) != (USER, PASSWORD):
            return as_json({"error": {"code": "login", "description": "Login falsch."}})
        code = body.get("double_auth_code")
        if code != TOTP_CODE:
            words = f"Der Code {code} ist falsch." if code else "Bitte den Code der App eingeben."
            return as_json({"error": {"code": "double_auth", "description": words}})
        return self._new_token()

    def invoices(self, request: Request):
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return as_json({"message": "Unauthenticated."}, 401)
        self.list_pages += 1
        if self.list_pages == self.expire_after:
            self.tokens.clear()  # the first token ends after this page
        if self.echo:  # a new layout, which says what it was sent
            return html(f"<p>Angemeldet mit {auth}</p><div class='new-layout'></div>")
        return html(invoice_table())

    # -- the API-key portal

    def keyed_invoices(self, request: Request):
        if request.headers.get("x-api-key") != API_KEY:
            return as_json({"message": "Invalid API key"}, 401)
        echo = f"key {request.headers.get('x-api-key')}" if self.echo else ""
        table = invoice_table(self.other_host, echo)
        if self.echo:
            table = table.replace("invoices", "rechnungen")  # and the layout changed
        return html(table)

    def file(self, request: Request):
        auth = request.headers.get("authorization", "")
        keyed = request.headers.get("x-api-key") == API_KEY
        if keyed or auth[7:] in self.tokens or request.cookies.get("sid") in self.sessions:
            return 200, {"Content-Type": "application/pdf"}, PDF + request.path.encode()
        return as_json({"message": "Unauthenticated."}, 401)


@dataclass
class Setup:
    portal: Portal
    url: str
    requests: list[Request]
    pages: Path
    saved: list[Path] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)
    asked: list = field(default_factory=list)

    def connector(
        self, description: str, *, password: str = PASSWORD, codes: list[str] | None = None
    ) -> FormConnector:
        def save_page(name: str, body: bytes) -> Path:
            path = self.pages / f"{name}-{len(self.saved)}.html"
            path.write_bytes(body)
            self.saved.append(path)
            return path

        options = yaml.safe_load(description.replace("URL", self.url))
        ctx = PortalContext(
            portal="shop",
            username=USER,
            password=lambda: password,
            browser=make_browser(HttpPolicy(timeout=10)),
            ask=self._answer(codes),
            wait_approval=lambda request, poll: None,
            save_page=save_page,
            read_body=read_body,
            options=options,
            secret={"headers.X-Api-Key.secret": API_KEY}.__getitem__,
            learn_secret=self.learned.append,
        )
        return FormConnector(ctx)

    def _answer(self, codes: list[str] | None):
        """What a person types at each question, in order; nothing to ask without codes."""

        def ask(request):
            if codes is None:
                pytest.fail(f"nothing should be asked: {request}")
            self.asked.append(request)
            return codes[len(self.asked) - 1]

        return ask

    def of(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]


@pytest.fixture
def setup(tmp_path):
    portal = Portal()
    with serve(portal) as served:
        portal.url = served.url
        yield Setup(portal, served.url, served.requests, tmp_path)


def numbers(connector: FormConnector) -> list[str]:
    return [doc.id for doc in connector.documents()]


# -- two steps: the user name on one page, the password on the next

TWO_STEPS = """
start: URL/signin
login:
  steps:
    - {form: "form#identifier", username: email}
    - {form: "form#password", password: pw, failure: "p.error"}
  success: "a.logout"
  failure: "p.error"
documents: {pages: [/steps/invoices], rows: table.invoices tr, fields: {id: td.nr}, download: a.pdf}
"""


def test_two_steps_send_the_user_name_then_the_password_and_list_the_documents(setup):
    connector = setup.connector(TWO_STEPS)
    connector.login()
    assert numbers(connector) == ["2024-1", "2024-2"]
    [first] = setup.of("POST", "/signin/identifier")
    [second] = setup.of("POST", "/signin/password")
    assert first.form() == {"email": [USER]}  # the password is not sent with the user name
    assert second.form() == {"email": [USER], "pw": [PASSWORD]}


def test_two_steps_a_wrong_password_is_wrong_credentials_in_the_portals_words(setup):
    with pytest.raises(WrongCredentials) as e:
        setup.connector(TWO_STEPS, password="wrong horse").login()
    assert e.value.portal_message == "Das Passwort ist falsch."
    assert len(setup.of("POST", "/signin/password")) == 1  # not tried again


def test_two_steps_an_unknown_user_name_ends_at_the_first_page(setup):
    connector = setup.connector(TWO_STEPS)
    connector.ctx.username = "bob@example.org"
    with pytest.raises(WrongCredentials) as e:
        connector.login()
    assert e.value.portal_message == "Diese E-Mail-Adresse kennen wir nicht."
    assert setup.of("POST", "/signin/password") == []  # the password was never sent


# -- a JSON login: CSRF token from the page's <meta>, a bearer token from the answer

JSON_LOGIN = """
start: URL/login
login:
  type: json
  url: /api/login
  body: {"auth": {"email": "{username}", "password": "{password}"}, "remember": true}
  csrf: {page: /login, meta: csrf-token, header: X-CSRF-Token}
  success: {path: data.user}
  failure: {path: error.message}
  token: {path: data.access_token, header: Authorization, format: "Bearer {token}"}
documents: {pages: [/invoices], rows: table.invoices tr, fields: {id: td.nr}, download: a.pdf}
"""


def test_a_json_login_sends_the_csrf_header_and_then_the_bearer_token(setup):
    connector = setup.connector(JSON_LOGIN)
    connector.login()
    docs = list(connector.documents())
    assert [d.id for d in docs] == ["2024-1", "2024-2"]
    assert connector.download(docs[0])[0].startswith(PDF)  # the token opens the files too
    [login] = setup.of("POST", "/api/login")
    assert json.loads(login.body)["auth"]["password"] == PASSWORD  # escaped, as it is
    [token] = setup.portal.tokens
    assert setup.of("GET", "/invoices")[0].headers["authorization"] == f"Bearer {token}"
    assert token in setup.learned  # the run blanks it in logs and saved pages
    assert login.headers["x-csrf-token"] in setup.learned


def test_a_form_encoded_json_login(setup):
    description = JSON_LOGIN.replace("/api/login\n", "/api/login-form\n").replace(
        '"auth": {"email": "{username}", "password": "{password}"}, "remember": true',
        '"email": "{username}", "password": "{password}"',
    )
    description = description.replace("  csrf:", "  encoding: form\n  csrf:")
    connector = setup.connector(description)
    connector.login()
    assert numbers(connector) == ["2024-1", "2024-2"]
    [login] = setup.of("POST", "/api/login-form")
    assert login.form() == {"email": [USER], "password": [PASSWORD]}


def test_a_json_login_refused_is_wrong_credentials_with_the_portals_message(setup):
    with pytest.raises(WrongCredentials) as e:
        setup.connector(JSON_LOGIN, password="wrong horse").login()
    assert e.value.portal_message == "E-Mail oder Passwort ist falsch."
    assert setup.portal.tokens == set()


def test_a_token_that_expires_mid_list_is_session_expired_and_a_new_login_goes_on(setup):
    setup.portal.expire_after = 1
    connector = setup.connector(JSON_LOGIN)
    connector.login()
    assert numbers(connector) == ["2024-1", "2024-2"]
    with pytest.raises(SessionExpired, match="HTTP 401"):
        numbers(connector)
    connector.login()  # what the runner does, once
    assert numbers(connector) == ["2024-1", "2024-2"]
    assert len(setup.of("POST", "/api/login")) == 2


def test_a_token_from_a_cookie_is_sent_as_a_header(setup):
    setup.portal.jwt_cookie = True
    description = JSON_LOGIN.replace("{path: data.access_token, header:", "{cookie: jwt, header:")
    connector = setup.connector(description)
    connector.login()
    assert numbers(connector) == ["2024-1", "2024-2"]
    [token] = setup.portal.tokens
    assert setup.of("GET", "/invoices")[0].headers["authorization"] == f"Bearer {token}"
    assert token in setup.learned


def test_an_answer_that_is_not_json_is_portal_changed_with_the_answer_saved(setup):
    connector = setup.connector(JSON_LOGIN.replace("url: /api/login", "url: /api/deep"))
    with pytest.raises(PortalChanged, match=r"login\.url: the answer is not JSON") as e:
        connector.login()
    assert e.value.page == str(setup.saved[0]) and "/api/deep" in str(e.value)


def test_a_csrf_token_from_a_cookie_is_sent_decoded_in_its_header(setup):
    description = JSON_LOGIN.replace(
        "{page: /login, meta: csrf-token, header: X-CSRF-Token}",
        "{page: /sanctum/csrf-cookie, cookie: XSRF-TOKEN, header: X-XSRF-TOKEN}",
    )
    connector = setup.connector(description)
    connector.login()
    assert numbers(connector) == ["2024-1", "2024-2"]
    [login] = setup.of("POST", "/api/login")
    assert login.headers["x-xsrf-token"] == setup.portal.csrf["xsrf"]  # "==" and not "%3D%3D"


# -- an API key in a header, no login


API_KEY_PORTAL = """
start: URL/keyed/invoices
login: {type: none}
headers:
  Accept-Language: de
  X-Api-Key: {format: "{secret}", secret: {env: SHOP_API_KEY}}
documents: {pages: [/keyed/invoices], rows: table.invoices tr, fields: {id: td.nr}, download: a.pdf}
"""


def test_an_api_key_portal_sends_its_headers_and_the_key_to_its_own_host_only(setup):
    port = setup.url.rsplit(":", 1)[1]
    setup.portal.other_host = f"http://localhost:{port}"  # a CDN, to the portal's server
    connector = setup.connector(API_KEY_PORTAL)
    assert not connector.session_valid()
    connector.login()
    docs = list(connector.documents())
    assert [d.id for d in docs] == ["2024-1", "2024-2"]
    [listed] = setup.of("GET", "/keyed/invoices")
    assert listed.headers["x-api-key"] == API_KEY
    assert listed.headers["accept-language"] == "de"
    with pytest.raises(WrongCredentials):  # the other host gets none of them, and refuses
        connector.download(docs[0])
    [download] = setup.of("GET", "/files/1.pdf")
    assert "x-api-key" not in download.headers and "accept-language" not in download.headers


def test_a_redirect_to_another_host_takes_none_of_the_headers_along(setup):
    port = setup.url.rsplit(":", 1)[1]
    setup.portal.other_host = f"http://localhost:{port}"
    connector = setup.connector(
        API_KEY_PORTAL.replace("pages: [/keyed/invoices]", "pages: [/keyed/moved]")
    )
    connector.login()
    with pytest.raises(WrongCredentials, match="refused the headers"):
        numbers(connector)
    [moved] = setup.of("GET", "/keyed/moved")
    [followed] = setup.of("GET", "/keyed/invoices")
    assert moved.headers["x-api-key"] == API_KEY
    assert "x-api-key" not in followed.headers and "accept-language" not in followed.headers


def test_a_refused_api_key_is_wrong_credentials(setup):
    connector = setup.connector(API_KEY_PORTAL)
    connector.headers.set("X-Api-Key", "not-the-key")
    connector.login()
    with pytest.raises(WrongCredentials, match="refused the headers"):
        numbers(connector)


# -- descriptions: what is wrong is said with its option


def problems(description: str) -> dict[str, str]:
    return dict(
        FormConnector.check_options(yaml.safe_load(description.replace("URL", "https://x.example")))
    )


def test_mistakes_in_the_login_side_are_named_by_their_option():
    found = problems(
        """
start: URL/login
login:
  type: json
  body: {"email": "{user}", "pass": "{password}"}
  token: {path: "data.[", header: "Bad Header"}
  csrf: {meta: csrf-token}
  failure: {paht: error}
headers:
  X-Api-Key: {format: "Key {secret}"}
  Authorization: {format: "Token {secret}", secret: 42}
  "Bad.Name": x
documents: {pages: [/i], rows: tr, download: a}
"""
    )
    assert found.pop("login.url").startswith("missing: the address the login is sent to")
    assert found.pop("login.body.email").startswith("unknown placeholder {user}")
    assert found.pop("login.token.path").startswith("invalid JSON path 'data.['")
    assert (
        found.pop("login.token.header")
        == "'Bad Header' is not a header name (letters, digits, '-')"
    )
    assert found.pop("login.csrf.header").startswith("missing: the header")
    assert found.pop("login.failure.paht").startswith("unknown option; did you mean 'path'")
    assert found.pop("login.failure.path").startswith("missing")
    assert found.pop("headers.X-Api-Key.format").startswith("unknown placeholder {secret}")
    assert found.pop("headers.Authorization.secret").startswith("expected a secret")
    assert found.pop("headers.Bad.Name").startswith("'Bad.Name' is not a header name")
    assert found == {}
    steps = problems(
        """
start: URL/login
login: {form: "form#a", steps: [{form: "form#a", username: email}]}
documents: {pages: [/i], rows: tr, download: a}
"""
    )
    assert steps == {
        "login.form": "give it in each of `steps:` instead",
        "login.steps": "no step says which input takes the password, e.g. `password: password`",
    }


def test_a_header_secret_is_read_from_the_config_as_the_password_is(monkeypatch):
    monkeypatch.setenv("SHOP_API_KEY", API_KEY)
    portal = textwrap.indent(API_KEY_PORTAL.replace("URL", "https://shop.example"), "      ")
    config = make_daemon_dir(extra=f"portals:\n  - name: shop\n    form:\n{portal}").config
    [shop] = load_config(config).portals
    assert shop.secrets["headers.X-Api-Key.secret"].resolve() == API_KEY
    config.write_text(config.read_text().replace("{env: SHOP_API_KEY}", "{env: 'no such'}"))
    with pytest.raises(ConfigError) as e:
        load_config(config)
    assert "portals[0].form.headers.X-Api-Key.secret.env" in str(e.value)
    assert "'no such' is not a valid environment variable name" in str(e.value)


# -- a whole run: the token expires mid-list, and no secret shows anywhere


def test_a_daemon_run_logs_in_again_once_and_shows_no_token_anywhere(setup):
    setup.portal.expire_after = 1  # the first token ends after the list, before the downloads
    secret_file = setup.pages / "password"
    secret_file.write_text(PASSWORD)
    form = textwrap.indent(JSON_LOGIN.replace("URL", setup.url), "      ")
    extra = (
        f"portals:\n  - name: shop\n    enabled: false\n    username: {USER}\n"
        f"    password: {{file: {secret_file}}}\n    form:\n{form}"
    )
    d = make_daemon_dir(extra=extra).start()
    try:
        first = fetch(d)
        assert first.returncode == 0 and "ok: 2 new documents" in first.stdout, first
        assert len(setup.of("POST", "/api/login")) == 2  # again after the 401, once
        setup.portal.echo = True  # the list changes, and shows the header it got
        second = fetch(d)
        assert second.returncode == 4 and "shop: portal changed" in second.stdout, second
        status = repr(d.status())
    finally:
        assert d.stop() == 0
    tokens = [r.headers["authorization"][7:] for r in setup.of("GET", "/invoices")]
    [saved] = (d.state / "pages" / "shop").iterdir()
    assert "Angemeldet mit Bearer [secret]" in saved.read_text()
    seen = everything_shown(d, first.stdout, second.stdout, status)
    assert len(set(tokens)) == 3 and all(token not in seen for token in tokens)
    assert PASSWORD not in seen


def everything_shown(d, *outputs: str) -> str:
    """What the commands printed, the daemon's log and every file of its state; the daemon's
    folder is removed."""
    files = (p.read_text(errors="replace") for p in d.state.rglob("*") if p.is_file())
    seen = "".join(outputs) + d.log_text() + "".join(files)
    shutil.rmtree(d.dir, ignore_errors=True)
    return seen


def fetch(d) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmid", "fetch", "--socket", str(d.socket), "shop", "--wait"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def test_a_code_step_is_refused_beside_a_json_login_and_a_captcha_beside_steps():
    description = JSON_LOGIN + "code: {form: 'form#otp'}\n"
    assert problems(description) == {
        "code": "only after an HTML login form, not with login.type json"
        " (an API login's code step is `login.code`)"
    }
    description = TWO_STEPS + "captcha: {image: img.captcha, field: captcha}\n"
    assert problems(description) == {"captcha": "only in a single login form, not with login.steps"}


def test_a_daemon_run_reads_the_api_key_from_its_file_and_shows_it_nowhere(setup):
    setup.portal.echo = True  # the list changed, and shows the key it got
    key_file = setup.pages / "api.key"
    key_file.write_text(API_KEY + "\n")
    form = API_KEY_PORTAL.replace("URL", setup.url).replace(
        "{env: SHOP_API_KEY}", f"{{file: {key_file}}}"
    )
    form = textwrap.indent(form, "      ")
    d = make_daemon_dir(extra=f"portals:\n  - name: shop\n    enabled: false\n    form:\n{form}")
    d.start()
    try:
        done = fetch(d)
        assert done.returncode == 4 and "shop: portal changed" in done.stdout, done
        status = repr(d.status())
    finally:
        assert d.stop() == 0
    [listed] = setup.of("GET", "/keyed/invoices")
    assert listed.headers["x-api-key"] == API_KEY
    [saved] = (d.state / "pages" / "shop").iterdir()
    assert "key [secret]" in saved.read_text()
    seen = everything_shown(d, done.stdout, status)
    assert API_KEY not in seen


# -- an API login that asks for a one-time code

API_CODE = """
start: URL/login
login:
  type: json
  url: /api/login-2fa
  body: {login: "{username}", password: "{password}"}
  failure: {path: "error.code == 'login' && error.description"}
  token: {path: data.access_token, header: Authorization, format: "Bearer {token}"}
  code:
    when: {path: "error.code == 'double_auth'"}
    field: double_auth_code
    medium: app
    failure: {path: error.description}
documents: {pages: [/invoices], rows: table.invoices tr, fields: {id: td.nr}, download: a.pdf}
"""


def test_an_api_login_asks_the_code_and_sends_the_body_again_with_it(setup):
    connector = setup.connector(API_CODE, codes=["111111", TOTP_CODE])
    connector.login()
    assert numbers(connector) == ["2024-1", "2024-2"]
    first, second = setup.asked
    assert first.medium == "app" and "authenticator app" in first.prompt
    assert second.retry_message == "Der Code 111111 ist falsch."  # the portal's words
    sent = [json.loads(r.body) for r in setup.of("POST", "/api/login-2fa")]
    assert [b.get("double_auth_code") for b in sent] == [None, "111111", TOTP_CODE]
    assert all(b["password"] == PASSWORD for b in sent)


def test_an_api_login_refusing_every_code_is_code_rejected(setup):
    with pytest.raises(CodeRejected) as e:
        setup.connector(API_CODE, codes=["1", "2", "3"]).login()
    assert e.value.portal_message == "Der Code 3 ist falsch."
    assert setup.portal.tokens == set()


def test_an_api_login_with_a_wrong_password_asks_no_code(setup):
    with pytest.raises(WrongCredentials) as e:
        setup.connector(API_CODE, password="wrong horse", codes=[]).login()
    assert e.value.portal_message == "Login falsch."
    assert setup.asked == []
