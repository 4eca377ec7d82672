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

The last tests run gmid's form connector with a description of pretix (the worked example of
docs/form-connector.md, "Detail pages"): the login with pretix's CSRF token (and its refusal),
the order list, and each order's page, where its invoices are; through the runner, a second
run opens no order page.
"""

from __future__ import annotations

import json
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
from gmid.errors import WrongCredentials
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.support.needs import unavailable
from tests.support.pretix import Pretix, PretixUnavailable
from tests.support.runner import started_runner

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
        unavailable(f"pretix is unavailable: {exc}")
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


# -- gmid's form connector, with a description of pretix

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
  detail:
    link: {{selector: "h4 a"}}
    rows: "li:has(> a[href*='/invoice/'])"
    fields:
      id: {{selector: "a", regex: "Invoice ([A-Z0-9-]+)"}}
      number: {{selector: "a", regex: "Invoice ([A-Z0-9-]+)"}}
      date: {{regex: "[(]([0-9-]{{10}})[)]"}}
    download: {{selector: "a"}}
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


def test_the_form_connector_reads_each_invoice_from_its_order_page(pretix: Pretix, tmp_path: Path):
    connector = form_connector(pretix, tmp_path)
    assert FormConnector.check_options(connector.ctx.options) == []
    connector.login()  # pretix's real form, with its CSRF token
    docs = list(connector.documents())
    seeded = {o["code"]: o for o in pretix.data["orders"]}
    # each order's page gives its invoice: known as ORDER/NUMBER, with the order's amount
    assert sorted(d.id for d in docs) == sorted(f"{c}/{o['invoice']}" for c, o in seeded.items())
    for doc in docs:
        order = seeded[doc.id.split("/")[0]]
        assert doc.number == order["invoice"]
        assert doc.amount == order["total"]
        assert doc.date is not None  # the invoice's, shown after its link
        assert f"/order/{order['code']}/{order['secret']}/invoice/" in doc.url
    data, content_type = connector.download(docs[0])
    assert data.startswith(b"%PDF") and content_type == "application/pdf"


RUNNER_CONFIG = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
portals:
  - name: pretix
    company: Konferenz
    username: {user}
    password: {{command: "echo {password}"}}
    form: {form}
"""


async def test_gmid_files_each_invoice_once_and_a_second_run_opens_no_order_page(
    pretix: Pretix, tmp_path: Path
):
    options = yaml.safe_load(
        DESCRIPTION.format(url=pretix.organizer_url, organizer=pretix.data["organizer"])
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        RUNNER_CONFIG.format(
            tmp=tmp_path,
            user=pretix.data["email"],
            password=pretix.data["password"],
            form=json.dumps(options),
        )
    )
    async with started_runner(path) as (runner, _config, index):
        first = await runner.fetch("pretix")
        filed = sorted(d.number for d in index.list())
        runner.events.recent.clear()
        second = await runner.fetch("pretix")
        told = [e["data"].get("progress") or "" for e in runner.events.recent]
        total = index.count()
    assert (first.outcome, first.new_documents) == ("ok", 3), first.message
    assert filed == sorted(o["invoice"] for o in pretix.data["orders"])
    assert (second.outcome, second.new_documents) == ("ok", 0), second.message
    assert total == 3
    assert "0 listed, 0 new" in told  # a known order's invoices are not even listed
    assert not [t for t in told if t.startswith(("reading the page of", "downloading"))], told


def test_the_form_connector_reads_pretixs_refusal(pretix: Pretix, tmp_path: Path):
    connector = form_connector(pretix, tmp_path, password="not-the-password")
    with pytest.raises(WrongCredentials) as refused:
        connector.login()
    assert "not found an account with this email address" in refused.value.portal_message
