"""API logins that need more than one request, against portals served on loopback.

- shaped as Deliveroo: the CSRF token of the login page's <meta> in a header, the e-mail
  address checked on its own first (`login.before`), then the password; the bearer token is
  the cookie the login sets; the orders are a JSON list read by offset;
- shaped as Free Mobile's NextAuth login: the CSRF token is read from a JSON answer
  (`login.csrf.path`) and sent in the form-encoded body, the session is a cookie, and the
  invoices are an HTML list.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import pytest
import yaml

from connectors.form.connector import FormConnector
from gmid.errors import PortalChanged, SessionExpired, WrongCredentials
from tests.connectors.form.harness import PASSWORD, PDF, USER, Harness, as_json, html, ids, pdf
from tests.support.portal_http import Request, serve

UNKNOWN = "Aucun compte n'est associé à cette adresse e-mail."
REFUSED = "Mot de passe incorrect. Réessayez."


@dataclass
class Portals:
    """Both portals in one server; each test uses its part."""

    url: str = ""
    csrf: dict[str, str] = field(default_factory=dict)  # visitor cookie -> token
    tokens: set[str] = field(default_factory=set)
    orders: int = 30
    expire_after: int | None = None  # the first token ends after this many list answers
    answers: int = 0
    check_path: str = "/fr/auth/check-email"  # a new version of the site moves it
    csrf_key: str = "csrfToken"  # and NextAuth's answer may change

    def __call__(self, request: Request):
        routes = {
            ("GET", "/fr/login"): self.login_page,
            ("GET", "/fr/consent"): lambda r: (204, {"Set-Cookie": "consent=1; Path=/"}, b""),
            (("POST", self.check_path)): self.check_email,
            ("POST", "/fr/auth/login"): self.login,
            ("GET", "/api/orders"): self.list_orders,
            ("GET", "/api/auth/csrf"): self.next_csrf,
            ("POST", "/api/auth/callback/credentials"): self.next_credentials,
            ("GET", "/account/conso-et-factures"): self.next_invoices,
        }
        if request.path.startswith("/api/orders/") or request.path.startswith("/pdf/"):
            return pdf(request) if self._allowed(request) else as_json({}, 401)
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    # -- Deliveroo

    def login_page(self, request: Request):
        visitor = request.cookies.get("visitor") or secrets.token_hex(8)
        token = self.csrf.setdefault(visitor, secrets.token_hex(20))
        return html(
            f"<meta name='csrf-token' content='{token}'><div id='app'></div>",
            [("Set-Cookie", f"visitor={visitor}; Path=/")],
        )

    def _csrf_ok(self, request: Request) -> bool:
        token = self.csrf.get(request.cookies.get("visitor", ""))
        return token is not None and request.headers.get("x-csrf-token") == token

    def check_email(self, request: Request):
        if not self._csrf_ok(request):
            return as_json({"error": {"message": "Invalid CSRF token"}}, 422)
        if json.loads(request.body) != {"email": USER}:
            return as_json({"registered": False, "error": {"message": UNKNOWN}})
        return as_json({"registered": True})

    def login(self, request: Request):
        if not self._csrf_ok(request):
            return as_json({"error": {"message": "Invalid CSRF token"}}, 422)
        if json.loads(request.body) != {"email": USER, "password": PASSWORD}:
            return as_json({"error": {"message": REFUSED}}, 401)
        token = "eyJ" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        cookie = f"consumer_auth_token={token}; Path=/; HttpOnly"
        return as_json({"status": "ok"}, headers=[("Set-Cookie", cookie)])

    def _allowed(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        return auth[7:] in self.tokens or request.cookies.get("session-token") in self.tokens

    def list_orders(self, request: Request):
        if not self._allowed(request):
            return as_json({"message": "Unauthorized"}, 401)
        self.answers += 1
        if self.answers == self.expire_after:
            self.tokens.clear()
        offset, limit = int(request.query["offset"][0]), int(request.query["limit"][0])
        orders = [
            {"id": 9000 + n, "submitted_at": f"2025-03-{n % 28 + 1:02}T19:02:11Z", "total": 23.5}
            for n in range(offset, min(offset + limit, self.orders))
        ]
        return as_json({"orders": orders})

    # -- Free Mobile's NextAuth

    def next_csrf(self, request: Request):
        token = secrets.token_hex(32)
        self.csrf["next"] = token
        cookie = f"next-auth.csrf-token={token}%7Cdigest; Path=/; HttpOnly"
        return as_json({self.csrf_key: token}, headers=[("Set-Cookie", cookie)])

    def next_credentials(self, request: Request):
        form = {k: v[0] for k, v in request.form().items()}
        cookie = request.cookies.get("next-auth.csrf-token", "")
        if form.get("csrfToken") != self.csrf.get("next") or not cookie.startswith(
            form["csrfToken"]
        ):
            return 302, {"Location": "/api/auth/signin?csrf=true"}, b""
        if (form.get("username"), form.get("password"), form.get("json")) != (
            USER,
            PASSWORD,
            "true",
        ):
            return as_json({"url": f"{self.url}/account/login?error=CredentialsSignin"}, 401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        cookie = f"session-token={token}; Path=/; HttpOnly"
        return as_json({"url": f"{self.url}/account/"}, headers=[("Set-Cookie", cookie)])

    def next_invoices(self, request: Request):
        if request.cookies.get("session-token") not in self.tokens:
            return html(
                "<form method='post'><input name='username'><input type='password' "
                "name='password'></form>"
            )
        self.answers += 1
        if self.answers == self.expire_after:
            self.tokens.clear()
        items = "".join(
            f"<div class='invoice'><span>Facture {m} 2025</span>"
            f"<a class='pdf' href='/pdf/facture?date=2025{m:02}01&no_facture=F{m}'>PDF</a></div>"
            for m in (3, 2, 1)
        )
        return html(f"<a class='logout' href='/logout'>Déconnexion</a>{items}")


DELIVEROO = """
start: URL/fr/login
login:
  type: json
  csrf: {page: /fr/login, meta: csrf-token, header: X-CSRF-Token}
  before:
    - {url: /fr/auth/check-email, body: {email: "{username}"}, failure: error.message}
  url: /fr/auth/login
  body: {email: "{username}", password: "{password}"}
  failure: error.message
  token: {cookie: consumer_auth_token, format: "Bearer {token}"}
documents:
  type: json
  pages: [/api/orders]
  rows: orders
  fields:
    id: id
    date: {path: submitted_at, regex: "^(.{10})"}
    amount: total
  download: {url: "/api/orders/{id}/receipt"}
  offset: {param: offset, limit_param: limit, limit: 25}
"""

FREE_MOBILE = """
start: URL/account/
login:
  type: json
  csrf: {page: /api/auth/csrf, path: csrfToken}
  url: /api/auth/callback/credentials
  encoding: form
  body: {csrfToken: "{csrf}", username: "{username}", password: "{password}", json: "true"}
  failure: {path: "contains(url, 'error=') && url"}
documents:
  pages: [/account/conso-et-factures]
  rows: div.invoice
  fields:
    date: {selector: a.pdf, attribute: href, regex: "date=([0-9]{8})", formats: ["%Y%m%d"]}
    number: {selector: a.pdf, attribute: href, regex: "no_facture=(\\\\w+)"}
  download: a.pdf
"""


@pytest.fixture
def portals(tmp_path):
    portal = Portals()
    with serve(portal) as served:
        portal.url = served.url
        yield portal, Harness(served.url, served.requests, tmp_path)


# -- Deliveroo: the e-mail address first, then the password


def test_the_email_is_checked_first_then_the_password_and_the_cookie_is_the_bearer(portals):
    portal, h = portals
    connector = h.connector(DELIVEROO)
    connector.login()
    docs = list(connector.documents())
    assert [d.id for d in docs] == [str(9000 + n) for n in range(30)]
    assert docs[0].date.isoformat() == "2025-03-01" and docs[0].amount == "23.5"
    assert connector.download(docs[0])[0] == PDF + b"/api/orders/9000/receipt"
    [check] = h.of("POST", "/fr/auth/check-email")
    [login] = h.of("POST", "/fr/auth/login")
    assert json.loads(check.body) == {"email": USER}  # the password is not sent with it
    assert check.headers["x-csrf-token"] == login.headers["x-csrf-token"]
    [token] = portal.tokens
    assert h.of("GET", "/api/orders")[0].headers["authorization"] == f"Bearer {token}"
    assert token in h.learned
    offsets = [r.query["offset"] for r in h.of("GET", "/api/orders")]
    assert offsets == [["0"], ["25"], ["30"]]


def test_a_get_before_the_login_is_made_in_order_with_its_cookie_kept(portals):
    _, h = portals
    description = DELIVEROO.replace("  before:\n", "  before:\n    - {url: /fr/consent}\n")
    h.connector(description).login()
    order = [(r.method, r.path) for r in h.requests]
    assert order == [
        ("GET", "/fr/login"),
        ("GET", "/fr/consent"),
        ("POST", "/fr/auth/check-email"),
        ("POST", "/fr/auth/login"),
    ]
    assert h.requests[2].cookies.get("consent") == "1"
    assert h.requests[1].headers["x-csrf-token"] == h.requests[3].headers["x-csrf-token"]


def test_an_unknown_address_ends_before_the_password_is_sent(portals):
    _, h = portals
    with pytest.raises(WrongCredentials) as e:
        h.connector(DELIVEROO, username="bob@example.org").login()
    assert e.value.portal_message == UNKNOWN
    assert h.of("POST", "/fr/auth/login") == []


def test_a_wrong_password_is_wrong_credentials_in_the_portals_words(portals):
    portal, h = portals
    with pytest.raises(WrongCredentials) as e:
        h.connector(DELIVEROO, password="wrong horse").login()
    assert e.value.portal_message == REFUSED
    assert portal.tokens == set()


def test_a_token_that_expires_mid_list_is_session_expired_and_a_new_login_goes_on(portals):
    portal, h = portals
    portal.expire_after = 1
    connector = h.connector(DELIVEROO)
    connector.login()
    with pytest.raises(SessionExpired, match="HTTP 401"):
        ids(connector)
    connector.login()
    assert len(ids(connector)) == 30
    assert len(h.of("POST", "/fr/auth/check-email")) == 2


def test_a_moved_check_is_portal_changed_naming_the_request(portals):
    portal, h = portals
    portal.check_path = "/fr/auth/v2/check-email"
    with pytest.raises(PortalChanged, match=r"login\.before\[0\]\.url: HTTP 404") as e:
        h.connector(DELIVEROO).login()
    assert e.value.page == str(h.saved[0])
    assert h.of("POST", "/fr/auth/login") == []


# -- Free Mobile: NextAuth's CSRF token from a JSON answer, in the body


def test_the_csrf_token_of_a_json_answer_goes_in_the_body(portals):
    portal, h = portals
    connector = h.connector(FREE_MOBILE)
    connector.login()
    docs = list(connector.documents())
    assert [d.number for d in docs] == ["F3", "F2", "F1"]
    assert [d.date.isoformat() for d in docs] == ["2025-03-01", "2025-02-01", "2025-01-01"]
    assert connector.download(docs[0])[0].startswith(PDF)
    [login] = h.of("POST", "/api/auth/callback/credentials")
    assert login.form()["csrfToken"] == [portal.csrf["next"]]
    assert "x-csrf-token" not in login.headers  # no header was asked for
    assert portal.csrf["next"] in h.learned


def test_nextauths_refusal_is_wrong_credentials_with_its_words(portals):
    _, h = portals
    with pytest.raises(WrongCredentials) as e:
        h.connector(FREE_MOBILE, password="wrong horse").login()
    assert e.value.portal_message.endswith("/account/login?error=CredentialsSignin")


def test_a_session_that_ends_mid_list_is_session_expired(portals):
    portal, h = portals
    portal.expire_after = 1
    connector = h.connector(FREE_MOBILE)
    connector.login()
    assert len(ids(connector)) == 3
    with pytest.raises(SessionExpired, match="shows the login form"):
        ids(connector)
    connector.login()
    assert len(ids(connector)) == 3


def test_a_csrf_answer_without_its_token_is_portal_changed_naming_the_path(portals):
    portal, h = portals
    portal.csrf_key = "token"
    with pytest.raises(PortalChanged, match=r"login\.csrf\.path: 'csrfToken' found nothing"):
        h.connector(FREE_MOBILE).login()
    assert h.of("POST", "/api/auth/callback/credentials") == []


def problems(description: str) -> dict[str, str]:
    options = yaml.safe_load(description.replace("URL", "https://x.example"))
    return dict(FormConnector.check_options(options))


def test_mistakes_in_requests_before_the_login_are_named_by_their_option():
    found = problems(
        """
start: URL/login
login:
  type: json
  csrf: {page: /api/auth/csrf, path: csrfToken, meta: csrf}
  before:
    - {url: /check, body: {email: "{username}", pw: "{password}"}}
    - {body: {email: "{user}"}, failure: {path: "a["}}
    - {url: "ftp://x/", method: GET}
  url: /login
  body: {password: "{password}"}
documents: {pages: [/i], rows: tr, download: a}
"""
    )
    assert found.pop("login.csrf").startswith("give one of `meta:`")
    assert found.pop("login.before[0].body").startswith("the password goes in the login's")
    assert found.pop("login.before[1].url").startswith("missing: the address")
    assert found.pop("login.before[1].body.email").startswith("unknown placeholder {user}")
    assert found.pop("login.before[1].failure.path").startswith("invalid JSON path")
    assert found.pop("login.before[2].url").startswith("expected a web address")
    assert found.pop("login.before[2].method").startswith("unknown option")
    assert found == {}
    assert problems(FREE_MOBILE) == {}
    no_header = FREE_MOBILE.replace('csrfToken: "{csrf}", ', "")
    assert problems(no_header) == {
        "login.csrf.header": 'missing: the header the API reads it from (or "{csrf}" in the body)'
    }
