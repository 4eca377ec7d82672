"""An OAuth2 login (`login.type: oauth2`) against an identity provider served on loopback.

The portal is shaped as April's self-care space: an identity provider's login page, a redirect
back to the web app with `?code=`, the code traded for a bearer token at the token endpoint,
and a JSON API of documents that wants the token and two fixed headers.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import textwrap
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
import yaml

from connectors.form.connector import FormConnector
from gmid.errors import PortalChanged, PortalError, SessionExpired, WrongCredentials
from tests.conftest import make_daemon_dir
from tests.connectors.form.harness import (
    PASSWORD,
    PDF,
    USER,
    Harness,
    as_json,
    everything_shown,
    fetch,
    html,
    ids,
    pdf,
)
from tests.support.portal_http import Request, serve

CLIENT = "se_selfcare_spi"


@dataclass
class Provider:
    """The identity provider, the web app it sends back to, and the API."""

    url: str = ""
    pending: dict[str, dict[str, str]] = field(default_factory=dict)  # login id -> request
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> request
    sessions: set[str] = field(default_factory=set)  # the provider's own session cookies
    tokens: set[str] = field(default_factory=set)
    expire_after: int | None = None  # the first token ends after this many API answers
    answers: int = 0
    form_id: str = "login-form"  # a redesign renames it
    codes_valid: bool = True  # False: the codes it sends back are refused when traded
    issued: list[str] = field(default_factory=list)  # every code and token handed out
    echo: bool = False  # the API changed, and shows the header it got
    back_with: dict[str, str] = field(default_factory=dict)  # replaces what is sent back
    otp: bool = False  # the provider asks for a code sent by SMS after the password

    @property
    def redirect(self) -> str:
        return f"{self.url}/app/"

    def __call__(self, request: Request):
        routes = {
            ("GET", "/idp/authorize"): self.authorize,
            ("POST", "/idp/login"): self.login,
            ("POST", "/idp/otp"): self.check_otp,
            ("POST", "/idp/token"): self.token,
            ("GET", "/app/"): lambda r: html("<div id='root'></div>"),
            ("GET", "/api/selfcare/documents"): self.documents,
        }
        if request.path.startswith("/api/files/"):
            return pdf(request) if self._bearer(request) else as_json({}, 401)
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    def authorize(self, request: Request):
        asked = {k: v[0] for k, v in request.query.items()}
        if asked.get("client_id") != CLIENT or asked.get("redirect_uri") != self.redirect:
            return html("<p>invalid_request</p>", status=400)
        if request.cookies.get("idp") in self.sessions:  # still logged in at the provider
            return self._back(asked)
        login = secrets.token_hex(8)
        self.pending[login] = asked
        return html(
            f"<form id='{self.form_id}' method='post' action='/idp/login'>"
            f"<input type='hidden' name='login_id' value='{login}'>"
            "<input type='email' name='username'><input type='password' name='password'>"
            "<button>Se connecter</button></form>"
        )

    def login(self, request: Request):
        form = {k: v[0] for k, v in request.form().items()}
        asked = self.pending.get(form.get("login_id", ""))
        if asked is None:
            return html("<p>Session expirée</p>", status=400)
        if (form.get("username"), form.get("password")) != (USER, PASSWORD):
            return html(
                "<div class='alert-error'>Identifiant ou mot de passe incorrect.</div>"
                f"<form id='{self.form_id}' method='post' action='/idp/login'>"
                f"<input type='hidden' name='login_id' value='{form['login_id']}'>"
                "<input type='email' name='username'><input type='password' name='password'>"
                "</form>"
            )
        if self.otp:
            return self._otp_page(form["login_id"])
        return self._logged_in(asked)

    def _otp_page(self, login: str, error: str = ""):
        return html(
            f"<p class='alert-error'>{error}</p>"
            * bool(error)
            + "<p class='sent'>Code envoyé au 06 •• •• •• 42</p>"
            "<form id='otp' method='post' action='/idp/otp'>"
            f"<input type='hidden' name='login_id' value='{login}'><input name='code'></form>"
        )

    def check_otp(self, request: Request):
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("code") != "424242":
            return self._otp_page(form["login_id"], "Code incorrect")
        return self._logged_in(self.pending[form["login_id"]])

    def _logged_in(self, asked: dict[str, str]):
        session = secrets.token_hex(8)
        self.sessions.add(session)
        status, headers, body = self._back(asked)
        return status, [*headers.items(), ("Set-Cookie", f"idp={session}; Path=/idp")], body

    def _back(self, asked: dict[str, str]):
        code = secrets.token_urlsafe(16)
        self.issued.append(code)
        if self.codes_valid:
            self.codes[code] = asked
        query = urlencode(self.back_with or {"code": code, "state": asked["state"]})
        return 302, {"Location": f"{self.redirect}?{query}"}, b""

    def token(self, request: Request):
        form = {k: v[0] for k, v in request.form().items()}
        asked = self.codes.pop(form.get("code", ""), None)
        wrong = (
            asked is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != CLIENT
            or form.get("redirect_uri") != asked["redirect_uri"]
            or not _verified(asked, form.get("code_verifier"))
        )
        if wrong:
            return as_json({"error": "invalid_grant", "error_description": "Code invalide"}, 400)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        self.issued.append(token)
        return as_json({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    def _bearer(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def documents(self, request: Request):
        if not self._bearer(request) or request.headers.get("x-selfcare-marque") != "APRIL":
            return as_json({"message": "Unauthorized"}, 401)
        self.answers += 1
        if self.answers == self.expire_after:
            self.tokens.clear()
        if self.echo:
            return html(f"<p>Angemeldet mit {request.headers['authorization']}</p>")
        page = int(request.query.get("page", ["1"])[0])
        rows = [
            {"reference": f"AV-{n}", "dateEmission": f"2025-0{n}-15", "url": f"/api/files/{n}"}
            for n in ((1, 2) if page == 1 else (3,) if page == 2 else ())
        ]
        return as_json({"documents": rows})


def _verified(asked: dict[str, str], verifier: str | None) -> bool:
    """PKCE: the verifier must hash to the challenge of the authorization, when it had one."""
    challenge = asked.get("code_challenge")
    if challenge is None:
        return verifier is None
    digest = hashlib.sha256((verifier or "").encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


APRIL = """
start: URL/api/
login:
  type: oauth2
  authorize: URL/idp/authorize
  client_id: se_selfcare_spi
  redirect_uri: URL/app/
  token_url: URL/idp/token
  form: "form#login-form"
  failure: ".alert-error"
headers:
  X-selfcare-marque: APRIL
documents:
  type: json
  pages: [/api/selfcare/documents]
  rows: documents
  fields:
    id: reference
    date: dateEmission
  download: {path: url}
  page: {param: page}
"""


@pytest.fixture
def provider(tmp_path):
    portal = Provider()
    with serve(portal) as served:
        portal.url = served.url
        yield portal, Harness(served.url, served.requests, tmp_path)


def test_the_code_of_the_redirect_is_traded_for_a_token_that_opens_the_api(provider):
    portal, h = provider
    connector = h.connector(APRIL)
    connector.login()
    docs = list(connector.documents())
    assert [d.id for d in docs] == ["AV-1", "AV-2", "AV-3"]
    assert connector.download(docs[0])[0] == PDF + b"/api/files/1"
    [authorize] = h.of("GET", "/idp/authorize")
    assert authorize.query["response_type"] == ["code"] and "code_challenge" not in authorize.query
    assert h.of("GET", "/app/") == []  # the redirect back is caught, not followed
    [trade] = h.of("POST", "/idp/token")
    [token] = portal.tokens
    assert trade.form()["grant_type"] == ["authorization_code"]
    assert token in h.learned and trade.form()["code"][0] in h.learned  # blanked in logs
    api = h.of("GET", "/api/selfcare/documents")[0]
    assert api.headers["authorization"] == f"Bearer {token}"
    assert "authorization" not in trade.headers  # no old token at the provider


def test_pkce_sends_a_challenge_and_its_verifier(provider):
    _, h = provider
    connector = h.connector(APRIL.replace("  failure:", "  pkce: true\n  failure:"))
    connector.login()
    assert ids(connector) == ["AV-1", "AV-2", "AV-3"]
    [authorize] = h.of("GET", "/idp/authorize")
    assert authorize.query["code_challenge_method"] == ["S256"]
    assert "code_verifier" in h.of("POST", "/idp/token")[0].form()


def test_a_wrong_password_is_wrong_credentials_in_the_providers_words(provider):
    portal, h = provider
    with pytest.raises(WrongCredentials) as e:
        h.connector(APRIL, password="wrong horse").login()
    assert e.value.portal_message == "Identifiant ou mot de passe incorrect."
    assert h.of("POST", "/idp/token") == [] and portal.tokens == set()


def test_a_token_that_expires_mid_list_logs_in_again_without_the_password(provider):
    portal, h = provider
    portal.expire_after = 1
    connector = h.connector(APRIL)
    connector.login()
    with pytest.raises(SessionExpired, match="HTTP 401"):
        ids(connector)
    connector.login()  # what the runner does, once: the provider still knows the browser
    assert ids(connector) == ["AV-1", "AV-2", "AV-3"]
    assert len(h.of("POST", "/idp/login")) == 1  # the password was sent once
    assert len(h.of("POST", "/idp/token")) == 2


def test_a_redesigned_login_page_is_portal_changed_naming_the_form(provider):
    portal, h = provider
    portal.form_id = "signin"
    with pytest.raises(PortalChanged, match=r"login\.form: selector 'form#login-form'") as e:
        h.connector(APRIL).login()
    assert e.value.page == str(h.saved[0])


def test_a_refused_code_is_portal_changed_naming_the_token_url(provider):
    portal, h = provider
    portal.codes_valid = False
    with pytest.raises(PortalChanged, match=r"login\.token_url: HTTP 400.*'Code invalide'"):
        h.connector(APRIL).login()
    assert portal.tokens == set()


def test_the_providers_code_step_comes_before_the_redirect_back(provider):
    portal, h = provider
    portal.otp = True
    code = "{form: 'form#otp', field: code, medium: sms, prompt: p.sent, failure: p.alert-error}"
    description = f"{APRIL}code: {code}\n"
    connector = h.connector(description, codes=["111111", "424242"])
    connector.login()
    assert ids(connector) == ["AV-1", "AV-2", "AV-3"]
    first, second = h.asked
    assert first.prompt == "Code envoyé au 06 •• •• •• 42" and first.medium == "sms"
    assert second.retry_message == "Code incorrect"


def test_a_token_path_that_finds_nothing_names_it_and_the_tokens_are_still_secrets(provider):
    portal, h = provider
    description = APRIL.replace("  form:", "  token: {path: data.token}\n  form:")
    with pytest.raises(PortalChanged, match=r"login\.token\.path: 'data\.token' found nothing"):
        h.connector(description).login()
    [token] = portal.tokens
    assert token in h.learned  # the saved answer shows it as [secret]


def test_a_login_the_provider_denies_is_wrong_credentials_in_its_words(provider):
    portal, h = provider
    portal.back_with = {"error": "access_denied", "error_description": "Compte bloqué"}
    with pytest.raises(WrongCredentials) as e:
        h.connector(APRIL).login()
    assert e.value.portal_message == "Compte bloqué"
    assert h.of("POST", "/idp/token") == []


def test_a_code_sent_back_with_another_state_is_not_traded(provider):
    portal, h = provider
    portal.back_with = {"code": "planted", "state": "someone-elses"}
    with pytest.raises(PortalError, match="another login's state"):
        h.connector(APRIL).login()
    assert h.of("POST", "/idp/token") == []


def problems(description: str) -> dict[str, str]:
    options = yaml.safe_load(description.replace("URL", "https://x.example"))
    return dict(FormConnector.check_options(options))


def test_mistakes_in_an_oauth2_login_are_named_by_their_option():
    found = problems(
        """
start: URL/api/
login:
  type: oauth2
  authorize: /idp/authorize
  redirect_uri: app/
  pkce: "yes"
  params: {state: x, audience: api}
  token: {path: "access_token[", format: "Bearer"}
  body: {}
documents: {pages: [/i], rows: tr, download: a}
"""
    )
    assert found.pop("login.authorize").startswith("expected an absolute URL")
    assert found.pop("login.token_url").startswith("missing: where the code is traded")
    assert found.pop("login.client_id").startswith("missing: the portal's client id")
    assert found.pop("login.redirect_uri").startswith("expected an absolute address")
    assert found.pop("login.pkce") == "expected true or false, got 'yes'"
    assert found.pop("login.params.state") == "gmid makes a new one for each login"
    assert found.pop("login.token.path").startswith("invalid JSON path")
    assert found.pop("login.token.format") == "the token is not used: put {token} in it"
    assert found.pop("login.body").startswith("unknown option")
    assert found == {}


def test_a_daemon_run_renews_the_token_once_and_shows_no_code_nor_token(provider):
    portal, h = provider
    portal.expire_after = 2  # the first token ends in the middle of the list
    secret_file = h.pages / "password"
    secret_file.write_text(PASSWORD)
    form = textwrap.indent(APRIL.replace("URL", h.url), "      ")
    extra = (
        f"portals:\n  - name: shop\n    enabled: false\n    username: {USER}\n"
        f"    password: {{file: {secret_file}}}\n    form:\n{form}"
    )
    d = make_daemon_dir(extra=extra).start()
    try:
        first = fetch(d)
        # two filed before the token ended, the third after the new login
        assert first.returncode == 0 and "3 listed, 1 new" in first.stdout, first
        assert len(h.of("POST", "/idp/token")) == 2 and len(h.of("POST", "/idp/login")) == 1
        files = {r.path for r in h.requests if r.path.startswith("/api/files/")}
        assert files == {"/api/files/1", "/api/files/2", "/api/files/3"}
        portal.echo = True  # the API changes, and shows the token it got
        second = fetch(d)
        assert second.returncode == 4 and "shop: portal changed" in second.stdout, second
        status = repr(d.status())
    finally:
        assert d.stop() == 0
    [saved] = (d.state / "pages" / "shop").iterdir()
    assert "Angemeldet mit Bearer [secret]" in saved.read_text()
    seen = everything_shown(d, first.stdout, second.stdout, status)
    assert len(portal.issued) == 6  # three codes, three tokens
    assert all(value not in seen for value in portal.issued)
    assert PASSWORD not in seen
