"""A real portal: pretix, installed from PyPI, served on 127.0.0.1, seeded with a customer whose
paid orders have invoices. These tests do what the customer's browser does, with `requests` and
BeautifulSoup, and so pin down the pages a description of pretix will have to follow:

- login: GET /ORG/account/login, a POST form with Django's `csrfmiddlewaretoken`, `email` and
  `password`; on success a redirect to /ORG/account/ (the order list), else the same page with
  `.alert-danger`;
- order list: /ORG/account/, one `article.row` per order, its link `h4 a` to the order page;
- order page: /ORG/EVENT/order/CODE/SECRET/, the panel "Invoices" with one link per invoice,
  `a[href*="/invoice/"]`, text "Invoice KONF-00001";
- download: /ORG/EVENT/order/CODE/SECRET/invoice/ID, `application/pdf`.

The order and invoice addresses carry the order's secret: pretix serves them without the login
too (its design: the links of its order mails).

The last tests run gmid's form connector with a description of today's features: the login
(with pretix's CSRF token and its refusal) and the order list work; but the invoice link is on
the order page, not in the list, so the list's link downloads the order's HTML page. A detail
page step (docs/form-connector.md, "Planned") is what a description of pretix still needs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import yaml
from bs4 import BeautifulSoup

from connectors.base import PortalContext
from connectors.form.connector import FormConnector
from gmid.errors import DownloadRejected, WrongCredentials
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.support.pretix import Pretix, PretixUnavailable

# The first session on a machine installs pretix (minutes); later ones start it in seconds.
pytestmark = pytest.mark.timeout(1200)

TIMEOUT = 30  # seconds, per request


@pytest.fixture(scope="module")
def pretix():
    """A started, seeded pretix; skipped when it cannot be had (failed under CI=true)."""
    folder = Path(tempfile.mkdtemp(prefix="gmid-pretix-"))
    server = Pretix(folder)
    try:
        server.start()  # installs pretix first when this machine has none
    except PretixUnavailable as exc:
        server.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"pretix is unavailable: the portal tests need it: {exc}")
        pytest.skip(f"pretix is unavailable: {exc}")
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def page(response: requests.Response) -> BeautifulSoup:
    response.raise_for_status()
    return BeautifulSoup(response.text, "html.parser")


def log_in(
    server: Pretix, password: str | None = None
) -> tuple[requests.Session, requests.Response]:
    """What a browser does: open the login page, fill in its form, send it with its token."""
    session = requests.Session()
    login_url = f"{server.organizer_url}/account/login"
    login_page = page(session.get(login_url, timeout=TIMEOUT))
    form = login_page.select_one("form[method=post]:has(input[type=password])")
    assert form is not None, "no login form"
    fields = {i["name"]: i.get("value", "") for i in form.select("input[name]")}
    assert fields["csrfmiddlewaretoken"], "the login form has no CSRF token"
    fields.update(email=server.data["email"], password=password or server.data["password"])
    action = urljoin(login_url, form.get("action") or login_url)
    return session, session.post(action, data=fields, timeout=TIMEOUT)


def test_a_customer_logs_in_and_downloads_each_invoice(pretix: Pretix):
    session, answer = log_in(pretix)
    assert answer.url == f"{pretix.organizer_url}/account/"
    orders = page(answer)
    assert orders.select_one("a[href*='/account/logout']"), "not logged in"

    rows = orders.select("article.row")
    links = [urljoin(answer.url, row.select_one("h4 a")["href"]) for row in rows]
    seeded = {o["code"]: o for o in pretix.data["orders"]}
    assert len(links) == len(seeded)
    for link in links:
        code = re.search(r"/order/([A-Z0-9]+)/", link).group(1)
        order = page(session.get(link, timeout=TIMEOUT))
        invoice_links = order.select("a[href*='/invoice/']")
        assert len(invoice_links) == 1
        shown = " ".join(invoice_links[0].get_text().split())
        number = re.fullmatch(r"Invoice (\S+)", shown).group(1)
        assert number == seeded[code]["invoice"]

        pdf = session.get(urljoin(link, invoice_links[0]["href"]), timeout=TIMEOUT)
        assert pdf.status_code == 200
        assert pdf.headers["Content-Type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        assert f'filename="{number}.pdf"' in pdf.headers["Content-Disposition"]


def test_a_wrong_password_shows_the_portals_message(pretix: Pretix):
    _, answer = log_in(pretix, password="not-the-password")
    assert answer.url == f"{pretix.organizer_url}/account/login"
    message = page(answer).select_one(".alert-danger")
    assert "not found an account with this email address and password" in message.get_text()


def test_the_order_list_needs_the_login(pretix: Pretix):
    answer = requests.get(f"{pretix.organizer_url}/account/", timeout=TIMEOUT)
    assert answer.url.startswith(f"{pretix.organizer_url}/account/login")


# -- gmid's form connector, with what it can describe today

DESCRIPTION = """\
start: {url}/account/login
login:
  fields: {{username: email, password: password}}
  success: {{selector: "a[href*='/account/logout']"}}
  failure: {{selector: ".alert-danger"}}
documents:
  pages: [/{organizer}/account/]
  rows: "article.row"
  fields:
    id: {{selector: "h4 a", regex: "([A-Z0-9]{{5}})"}}
    date: {{selector: "time", attribute: datetime, formats: ["%Y-%m-%d %H:%M"]}}
    amount: {{selector: "div.text-right p", regex: "€([0-9.,]+)"}}
  download: {{selector: "h4 a"}}
"""


def form_connector(server: Pretix, tmp_path: Path, password: str | None = None) -> FormConnector:
    options = yaml.safe_load(
        DESCRIPTION.format(url=server.organizer_url, organizer=server.data["organizer"])
    )

    def save_page(name: str, body: bytes) -> Path:
        path = tmp_path / f"{name}.html"
        path.write_bytes(body)
        return path

    def ask(request):
        raise AssertionError(f"pretix asked for nothing, yet: {request}")

    ctx = PortalContext(
        portal="pretix",
        username=server.data["email"],
        password=lambda: password or server.data["password"],
        browser=make_browser(HttpPolicy(timeout=TIMEOUT)),
        ask=ask,
        wait_approval=lambda request, poll: None,
        save_page=save_page,
        read_body=read_body,
        options=options,
    )
    return FormConnector(ctx)


def test_the_form_connector_logs_in_and_lists_the_orders(pretix: Pretix, tmp_path: Path):
    connector = form_connector(pretix, tmp_path)
    assert FormConnector.check_options(connector.ctx.options) == []
    connector.login()  # pretix's real form, with its CSRF token
    docs = list(connector.documents())
    seeded = {o["code"]: o for o in pretix.data["orders"]}
    assert sorted(d.id for d in docs) == sorted(seeded)
    for doc in docs:
        assert doc.amount == seeded[doc.id]["total"]
        assert doc.date is not None
        assert doc.url.endswith(f"/order/{doc.id}/{seeded[doc.id]['secret']}/")

    # What the list links is the order's page, not its invoice: the PDF is one page further,
    # which a description can only say with a detail step (docs/form-connector.md, "Planned").
    # Until then gmid says so, naming the option that led to the page.
    with pytest.raises(DownloadRejected) as rejected:
        connector.download(docs[0])
    assert "HTML page instead of a document" in str(rejected.value)
    assert "documents.download" in str(rejected.value)
    order_page = BeautifulSoup(connector.browser.get(docs[0].url).text, "html.parser")
    invoice = order_page.select_one("a[href*='/invoice/']")
    assert seeded[docs[0].id]["invoice"] in invoice.get_text()


def test_the_form_connector_reads_pretixs_refusal(pretix: Pretix, tmp_path: Path):
    connector = form_connector(pretix, tmp_path, password="not-the-password")
    with pytest.raises(WrongCredentials) as refused:
        connector.login()
    assert "not found an account with this email address" in refused.value.portal_message
