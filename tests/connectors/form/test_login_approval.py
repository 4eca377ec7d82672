"""A login confirmed in the portal's app (`approval:`), against a portal served on loopback.

The portal is shaped as Amazon's: a sign-in form with many hidden fields, then a page that
waits until the user approves a notification on the phone and that polls through a small form;
the orders are listed one year per page, each order's invoices on a page of its own.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field

import pytest

from gmid.errors import ChallengeExpired, CodeRejected, PortalChanged, WrongCredentials
from tests.connectors.form.harness import PASSWORD, USER, Harness, html, pdf
from tests.support.portal_http import Request, serve

PROMPT = "Nous avons envoyé une notification à l'appareil de Anna. Approuvez-la."
YEAR = datetime.datetime.now(datetime.UTC).year


@dataclass
class Shop:
    url: str = ""
    waiting: dict[str, int] = field(default_factory=dict)  # transaction -> polls so far
    sessions: set[str] = field(default_factory=set)
    approve_after: int = 2  # polls before the user taps "approve"
    deny: bool = False
    poll_form: str = "transactionApprovalStatus"

    def __call__(self, request: Request):
        routes = {
            ("GET", "/ap/signin"): self.signin_page,
            ("POST", "/ap/signin"): self.signin,
            ("POST", "/ap/cvf/approval/poll"): self.poll,
            ("GET", "/gp/your-account/order-history"): self.orders,
            ("GET", "/gp/shared-cs/ajax/invoice/invoice.html"): self.invoices,
        }
        if request.path.startswith("/documents/download/"):
            return (
                pdf(request)
                if request.cookies.get("session-id") in self.sessions
                else (403, {}, "")
            )
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    def _signin_form(self, error: str = ""):
        box = f"<div id='auth-error-message-box'><span>{error}</span></div>" if error else ""
        return html(
            f"{box}<form name='signIn' method='post' action='/ap/signin'>"
            f"<input type='hidden' name='appActionToken' value='{secrets.token_hex(8)}'>"
            "<input type='hidden' name='workflowState' value='eyJ6aXAiOiJERUYifQ'>"
            "<input type='email' name='email'><input type='password' name='password'>"
            "<input type='submit' id='signInSubmit'></form>"
        )

    def signin_page(self, request: Request):
        return self._signin_form()

    def signin(self, request: Request):
        form = {k: v[0] for k, v in request.form().items()}
        if "appActionToken" not in form or (form.get("email"), form.get("password")) != (
            USER,
            PASSWORD,
        ):
            return self._signin_form("Votre mot de passe est incorrect")
        transaction = secrets.token_hex(8)
        self.waiting[transaction] = 0
        return self._waiting(transaction)

    def _waiting(self, transaction: str):
        return html(
            f"<span class='transaction-approval-word-break'>{PROMPT}</span>"
            f"<form name='{self.poll_form}' method='post' action='/ap/cvf/approval/poll'>"
            f"<input type='hidden' name='transaction' value='{transaction}'></form>"
        )

    def poll(self, request: Request):
        transaction = request.form().get("transaction", [""])[0]
        if transaction not in self.waiting:
            return html("<p>Session expirée</p>", status=400)
        if self.deny:
            return html("<div class='a-alert-error'>La connexion a été refusée.</div>")
        self.waiting[transaction] += 1
        if self.waiting[transaction] < self.approve_after:
            return self._waiting(transaction)
        session = secrets.token_hex(8)
        self.sessions.add(session)
        location = f"/gp/your-account/order-history?orderFilter=year-{YEAR}"
        return 302, [("Location", location), ("Set-Cookie", f"session-id={session}; Path=/")], b""

    def orders(self, request: Request):
        if request.cookies.get("session-id") not in self.sessions:
            return 302, {"Location": "/ap/signin"}, b""
        year = request.query["orderFilter"][0].removeprefix("year-")
        orders = {str(YEAR): ["405-1111111-1111111"], str(YEAR - 1): ["405-2222222-2222222"]}
        cards = "".join(
            f"<div class='order'><span class='date'>12 janvier {year}</span>"
            f"<bdi dir='ltr'>{number}</bdi><span class='total'>12,34 €</span>"
            f"<a class='invoice' href='/gp/shared-cs/ajax/invoice/invoice.html?orderId={number}'>"
            "Facture</a></div>"
            for number in orders.get(year, [])
        )
        return html(f"<a id='nav-item-signout' href='/signout'>Déconnexion</a>{cards}")

    def invoices(self, request: Request):
        number = request.query["orderId"][0]
        return html(
            f"<ul><li><a href='/documents/download/{number}/invoice.pdf'>Facture 1</a></li></ul>"
        )


AMAZON = """
start: URL/ap/signin
login:
  form: "form[name=signIn]"
  success: "#nav-item-signout"
  failure: "#auth-error-message-box"
approval:
  when: ".transaction-approval-word-break"
  form: "form[name=transactionApprovalStatus]"
  prompt: ".transaction-approval-word-break"
  failure: ".a-alert-error"
documents:
  pages: ["/gp/your-account/order-history?orderFilter=year-{year}"]
  periods: {years: 2}
  rows: div.order
  fields:
    id: bdi
    date: {selector: span.date, formats: ["%d %B %Y"]}
    amount: {selector: span.total, decimal: ","}
  detail:
    link: a.invoice
    rows: "li:has(a[href$='invoice.pdf'])"
    download: a
"""


@pytest.fixture
def shop(tmp_path):
    portal = Shop()
    with serve(portal) as served:
        portal.url = served.url
        yield portal, Harness(served.url, served.requests, tmp_path)


def test_the_run_waits_for_the_approval_then_lists_each_years_orders(shop):
    _, h = shop
    connector = h.connector(AMAZON)
    connector.login()
    [asked] = h.approvals
    assert asked.prompt == PROMPT  # the portal's words, shown to the user
    assert h.polls == 2 and len(h.of("POST", "/ap/cvf/approval/poll")) == 2
    docs = list(connector.documents())
    orders = [d.id.split("/", 1)[0] for d in docs]  # ORDER/invoice's address
    assert orders == ["405-1111111-1111111", "405-2222222-2222222"]  # this year, the last
    assert docs[0].date == datetime.date(YEAR, 1, 12) and docs[0].amount == "12.34"
    assert connector.download(docs[0])[0].startswith(b"%PDF")


def test_a_wrong_password_asks_no_approval(shop):
    _, h = shop
    with pytest.raises(WrongCredentials) as e:
        h.connector(AMAZON, password="wrong horse").login()
    assert e.value.portal_message == "Votre mot de passe est incorrect"
    assert h.approvals == []


def test_a_login_refused_in_the_app_is_code_rejected_in_the_portals_words(shop):
    portal, h = shop
    portal.deny = True
    with pytest.raises(CodeRejected) as e:
        h.connector(AMAZON).login()
    assert e.value.portal_message == "La connexion a été refusée."


def test_nobody_approving_leaves_the_run_waiting(shop):
    portal, h = shop
    portal.approve_after = 100
    with pytest.raises(ChallengeExpired):
        h.connector(AMAZON, max_polls=3).login()
    assert len(h.of("POST", "/ap/cvf/approval/poll")) == 3


def test_a_renamed_polling_form_is_portal_changed_naming_the_option(shop):
    portal, h = shop
    portal.poll_form = "approvalPolling"
    with pytest.raises(PortalChanged, match=r"approval\.form: selector") as e:
        h.connector(AMAZON).login()
    assert e.value.page == str(h.saved[0])
