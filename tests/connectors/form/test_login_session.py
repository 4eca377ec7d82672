"""A session carried in the address (`login.session_params`), shaped as Free's subscriber
space: after the login the portal sends to `/home.pl?id=...&idt=...`, sets no cookie, and
every later page wants those two parameters."""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field

import pytest
import yaml

from connectors.form.connector import FormConnector
from gmid.errors import PortalChanged, SessionExpired, WrongCredentials
from tests.connectors.form.harness import PASSWORD, USER, Harness, html, ids, pdf
from tests.support.portal_http import Request, serve


@dataclass
class Free:
    sessions: dict[str, str] = field(default_factory=dict)  # id -> idt
    id_param: str = "idt"  # a new version renames it

    def __call__(self, request: Request):
        routes = {
            ("GET", "/login/"): lambda r: self._login_page(),
            ("POST", "/login/login.pl"): self.login,
            ("GET", "/home.pl"): self.home,
            ("GET", "/liste-factures.pl"): self.invoices,
            ("GET", "/facture_pdf.pl"): lambda r: pdf(r) if self._known(r) else (403, {}, ""),
        }
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    def _login_page(self, error: str = ""):
        alert = f"<div class='loginalert'>{error}</div>" if error else ""
        return html(
            f"{alert}<form id='log_form' method='post' action='/login/login.pl'>"
            "<input name='login'><input type='password' name='pass'></form>"
        )

    def login(self, request: Request):
        form = request.form()
        if (form.get("login"), form.get("pass")) != ([USER], [PASSWORD]):
            return self._login_page("Identifiant ou mot de passe incorrect")
        sid, token = str(secrets.randbelow(10**8)), secrets.token_hex(16)
        self.sessions[sid] = token
        return 302, {"Location": f"/home.pl?id={sid}&{self.id_param}={token}"}, b""

    def home(self, request: Request):
        if request.query.get("id", [""])[0] not in self.sessions:
            return 302, {"Location": "/login/"}, b""
        return html("<a href='/logout.pl'>Quitter</a>")

    def _known(self, request: Request) -> bool:
        sid = request.query.get("id", [""])[0]
        return sid in self.sessions and request.query.get("idt") == [self.sessions[sid]]

    def _if_known(self, request: Request, body: str):
        return html(body) if self._known(request) else (302, {"Location": "/login/"}, b"")

    def invoices(self, request: Request):
        sid, idt = request.query.get("id", [""])[0], request.query.get("idt", [""])[0]
        items = "".join(
            f"<li><span><a href='/facture_pdf.pl?id={sid}&idt={idt}&no_facture={n}'>PDF</a>"
            f"</span><span>{month} 2025</span><span class='last'>29,99 €</span></li>"
            for n, month in ((702, "février"), (701, "janvier"))
        )
        return self._if_known(
            request, f"<a href='/logout.pl'>Quitter</a><ul class='pane'>{items}</ul>"
        )


FREE = """
start: URL/login/
login:
  form: "form#log_form"
  fields: {username: login, password: pass}
  failure: ".loginalert"
  success: "a[href='/logout.pl']"
  session_params: [id, idt]
documents:
  pages: [/liste-factures.pl]
  rows: "ul.pane > li"
  fields:
    id: {selector: "span a", attribute: href, regex: "no_facture=([0-9]+)"}
    date: {selector: "span:nth-of-type(2)", formats: ["%B %Y"]}
    amount: {selector: "span.last", decimal: ","}
  download: "span a"
"""


@pytest.fixture
def free(tmp_path):
    portal = Free()
    with serve(portal) as served:
        yield portal, Harness(served.url, served.requests, tmp_path)


def test_the_parameters_of_the_address_after_the_login_go_to_every_page(free):
    portal, h = free
    connector = h.connector(FREE)
    assert not connector.session_valid()  # the cookies alone never open the list
    connector.login()
    docs = list(connector.documents())
    assert [d.id for d in docs] == ["702", "701"]
    assert docs[1].date == datetime.date(2025, 1, 1) and docs[1].amount == "29.99"
    assert connector.download(docs[0])[0].startswith(b"%PDF")
    [(sid, idt)] = portal.sessions.items()
    [listed] = h.of("GET", "/liste-factures.pl")
    assert listed.query == {"id": [sid], "idt": [idt]}
    [fetched] = h.of("GET", "/facture_pdf.pl")  # given by the page: not sent twice
    assert fetched.query == {"id": [sid], "idt": [idt], "no_facture": ["702"]}
    assert idt in h.learned  # a key to the account: blanked in logs and saved pages


def test_a_wrong_password_is_wrong_credentials_in_the_portals_words(free):
    _, h = free
    with pytest.raises(WrongCredentials) as e:
        h.connector(FREE, password="wrong horse").login()
    assert e.value.portal_message == "Identifiant ou mot de passe incorrect"


def test_a_session_that_ends_mid_list_is_session_expired_and_a_new_login_goes_on(free):
    portal, h = free
    connector = h.connector(FREE)
    connector.login()
    portal.sessions.clear()
    with pytest.raises(SessionExpired, match="shows the login form"):
        ids(connector)
    connector.login()
    assert ids(connector) == ["702", "701"]
    assert len(h.of("GET", "/liste-factures.pl")) == 2


def test_an_address_without_the_parameter_is_portal_changed_naming_the_option(free):
    portal, h = free
    portal.id_param = "token"
    with pytest.raises(PortalChanged, match=r"login\.session_params: .* no 'idt'"):
        h.connector(FREE).login()


def test_session_params_are_read_when_the_config_is_loaded():
    options = yaml.safe_load(FREE.replace("URL", "https://x.example"))
    options["login"]["session_params"] = []
    assert FormConnector.check_options(options) == [
        ("login.session_params", "expected parameter names, e.g. [id, idt]")
    ]
