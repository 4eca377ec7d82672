"""Detail pages of the form connector (`documents.detail`) against a portal served on loopback.

The portal lists orders (an HTML table, or a JSON answer); each order links to its page (HTML or
JSON) where the invoice links are, with their numbers, dates and amounts; an order may hold
several invoices (an invoice and its cancellation). Runs go through the runner, which files
what is new: a detail page is only opened for what it has not filed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import pytest

from connectors.form.connector import FormConnector
from gmid.errors import PortalChanged
from tests.connectors.test_form import PASSWORD, USER
from tests.connectors.test_form import Setup as ShopSetup
from tests.connectors.test_form_json import RUNNER_CONFIG, as_json, html, pdf
from tests.support.portal_http import Request, serve
from tests.support.runner import started_runner

ORDERS = {  # order -> its invoices: number, date, amount
    "A1": [("R-101", "2024-03-01", "10,00")],
    "B2": [("R-201", "2024-04-02", "20,50"), ("S-201", "2024-04-09", "-20,50")],
}


@dataclass
class Portal:
    """A login form, then a list of orders whose pages link to the invoices."""

    orders: dict[str, list[tuple[str, str, str]]] = field(default_factory=lambda: dict(ORDERS))
    links: bool = True  # False: the order pages lost their invoice links
    sessions: set[str] = field(default_factory=set)
    detail_requests: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)

    def __call__(self, request: Request):
        if request.path == "/login":
            return self.login(request) if request.method == "POST" else self.login_page()
        if request.cookies.get("sid") not in self.sessions:
            return 302, {"Location": "/login"}, b""
        if request.path == "/home":
            return html("<a class='logout' href='/logout'>Abmelden</a>")
        if request.path == "/orders":
            rows = "".join(
                f"<tr class='order'><td class='code'>{code}</td>"
                f"<td><a class='open' href='/orders/{code}'>Details</a></td></tr>"
                for code in self.orders
            )
            return html(f"<a class='logout' href='/logout'>x</a><table>{rows}</table>")
        if request.path == "/api/orders":
            orders = [{"code": c, "href": f"/api/orders/{c}"} for c in self.orders]
            return as_json({"orders": orders})
        if request.path.startswith(("/orders/", "/api/orders/")):
            self.detail_requests.append(request.path)
            code = request.path.rsplit("/", 1)[1]
            if request.path.startswith("/api/"):
                return as_json(
                    {"code": code, "invoices": [self.invoice(*i) for i in self.orders[code]]}
                )
            return html(self.order_page(code))
        if request.path.startswith("/files/"):
            self.downloads.append(request.path)
            return 200, {"Content-Type": "application/pdf"}, pdf(request.path)
        return 404, {}, b"not found"

    def invoice(self, number: str, date: str, amount: str) -> dict:
        found = {"number": number, "date": date, "total": amount.replace(",", ".")}
        return {**found, "pdf": f"/files/{number}.pdf"} if self.links else found

    def order_page(self, code: str) -> str:
        items = "".join(
            "<li class='invoice'>"
            + (
                f"<a class='pdf' href='/files/{number}.pdf'>Invoice {number}</a>"
                if self.links
                else f"Invoice {number}"
            )
            + f" ({date}) <span class='total'>{amount} €</span></li>"
            for number, date, amount in self.orders[code]
        )
        return f"<h1>Order {code}</h1><ul>{items}</ul>"

    def login_page(self):
        return html(
            "<form method='post' action='/login'><input name='email'>"
            "<input type='password' name='password'><button>Anmelden</button></form>"
        )

    def login(self, request: Request):
        form = {k: v[-1] for k, v in request.form().items()}
        if form.get("email") != USER or form.get("password") != PASSWORD:
            return self.login_page()
        sid = secrets.token_hex(8)
        self.sessions.add(sid)
        return 303, [("Location", "/home"), ("Set-Cookie", f"sid={sid}; Path=/")], b""


def description(url: str, kind: str, rows: bool) -> dict:
    """The portal's description: an HTML or JSON list and detail page, one invoice per order
    (`rows` False) or each invoice of the order page (`rows` True)."""
    html_detail = {
        "link": {"selector": "a.open"},
        "fields": {
            "number": {"selector": "a.pdf", "regex": "Invoice (\\S+)"},
            "date": {"regex": "\\((\\d{4}-\\d{2}-\\d{2})\\)"},
            "amount": {"selector": ".total", "decimal": ","},
        },
        "download": {"selector": "a.pdf"},
    }
    json_detail = {
        "link": {"path": "href"},
        "fields": {
            "number": "invoices[0].number",
            "date": "invoices[0].date",
            "amount": "invoices[0].total",
        },
        "download": "invoices[0].pdf",
    }
    if kind == "html":
        documents = {
            "pages": ["/orders"],
            "rows": "tr.order",
            "fields": {"id": {"selector": "td.code"}},
            "detail": html_detail,
        }
        if rows:
            html_detail["rows"] = "li.invoice"
            html_detail["fields"]["id"] = html_detail["fields"]["number"]
    else:
        documents = {
            "type": "json",
            "pages": ["/api/orders"],
            "rows": "orders",
            "fields": {"id": "code"},
            "detail": json_detail,
        }
        if rows:
            json_detail.update(
                rows="invoices",
                fields={"id": "number", "number": "number", "date": "date", "amount": "total"},
                download="pdf",
            )
    return {
        "start": f"{url}/login",
        "login": {"success": {"selector": "a.logout"}},
        "documents": documents,
    }


async def runs(tmp_path, url: str, options: dict, times: int, between=None):
    """Fetch the portal `times` times through the runner; return the records and the index's
    documents (number, date, amount), `between` called after the first run."""
    path = tmp_path / "config.yaml"
    config = RUNNER_CONFIG.format(
        tmp=tmp_path, user=USER, password=PASSWORD, form=json.dumps(options)
    )
    path.write_text(config)
    records = []
    async with started_runner(path) as (runner, _config, index):
        for n in range(times):
            records.append(await runner.fetch("api"))
            if n == 0 and between is not None:
                between()
        filed = sorted((d.number, str(d.date), d.amount) for d in index.list())
    return records, filed


FILED = [
    ("R-101", "2024-03-01", "10.00"),
    ("R-201", "2024-04-02", "20.50"),
    ("S-201", "2024-04-09", "-20.50"),
]


@pytest.mark.parametrize("kind", ["html", "json"])
async def test_each_invoice_of_an_order_page_is_filed_once_and_known_orders_cost_nothing(
    tmp_path, kind
):
    portal = Portal()
    with serve(portal) as served:
        options = description(served.url, kind, rows=True)
        (first, second), filed = await runs(tmp_path, served.url, options, 2)
    assert (first.outcome, first.new_documents) == ("ok", 3), first.message
    assert filed == FILED  # numbers, dates and amounts from the order pages
    assert len(portal.detail_requests) == 2 and len(portal.downloads) == 3
    # the second run opens no order page and downloads nothing
    assert (second.outcome, second.new_documents) == ("ok", 0), second.message


@pytest.mark.parametrize("kind", ["html", "json"])
async def test_a_detail_page_of_one_document_is_opened_for_new_ids_only(tmp_path, kind):
    portal = Portal(orders={"A1": ORDERS["A1"]})

    def new_order():
        portal.orders["C3"] = [("R-301", "2024-05-03", "30,00")]
        portal.detail_requests.clear()
        portal.downloads.clear()

    with serve(portal) as served:
        options = description(served.url, kind, rows=False)
        (first, second), filed = await runs(tmp_path, served.url, options, 2, between=new_order)
    assert (first.outcome, first.new_documents) == ("ok", 1), first.message
    assert (second.outcome, second.new_documents) == ("ok", 1), second.message
    assert filed == [("R-101", "2024-03-01", "10.00"), ("R-301", "2024-05-03", "30.00")]
    # the known order A1 cost no request in the second run: only the new C3's page and file
    prefix = "/api/orders" if kind == "json" else "/orders"
    assert portal.detail_requests == [f"{prefix}/C3"]
    assert portal.downloads == ["/files/R-301.pdf"]


@pytest.mark.parametrize(
    ("kind", "rows", "expected"),
    [
        ("html", False, "documents.detail.download: selector 'a.pdf' matched nothing"),
        ("html", True, "documents.detail.download: selector 'a.pdf' matched nothing"),
        ("json", False, "documents.detail.download: path 'invoices[0].pdf' matched nothing"),
        ("json", True, "documents.detail.download: path 'pdf' matched nothing"),
    ],
    ids=["html-one", "html-rows", "json-one", "json-rows"],
)
def test_a_detail_page_without_its_link_is_portal_changed_naming_the_option(
    tmp_path, kind, rows, expected
):
    portal = Portal(links=False)
    with serve(portal) as served:
        setup = ShopSetup(portal, served.url, served.requests, tmp_path)
        connector = setup.connector(options=description(served.url, kind, rows=rows))
        connector.login()
        with pytest.raises(PortalChanged) as changed:
            list(connector.documents())
    message = str(changed.value)
    assert expected in message
    assert "/orders/A1" in message  # on the order page, which is kept
    assert b"A1" in setup.saved[-1].read_bytes()
    assert portal.downloads == []


def test_a_row_without_its_detail_link_is_portal_changed_naming_the_option(tmp_path):
    portal = Portal()
    with serve(portal) as served:
        setup = ShopSetup(portal, served.url, served.requests, tmp_path)
        options = description(served.url, "json", rows=True)
        options["documents"]["detail"]["link"] = {"path": "links.order"}
        connector = setup.connector(options=options)
        connector.login()
        with pytest.raises(PortalChanged) as changed:
            list(connector.documents())
    assert "documents.detail.link: path 'links.order' matched nothing" in str(changed.value)
    assert portal.detail_requests == []


async def test_a_filed_document_whose_file_was_deleted_is_fetched_again_through_its_page(
    tmp_path,
):
    portal = Portal()

    def delete_files():
        for path in (tmp_path / "archive").rglob("*.pdf"):
            if "R-101" in path.read_bytes().decode(errors="replace"):
                path.unlink()
        portal.detail_requests.clear()
        portal.downloads.clear()

    with serve(portal) as served:
        options = description(served.url, "html", rows=False)
        (first, second), _ = await runs(tmp_path, served.url, options, 2, between=delete_files)
    assert (first.outcome, second.outcome) == ("ok", "ok"), second.message
    # only the order whose file is gone costs its page again, and its file comes back
    assert portal.detail_requests == ["/orders/A1"]
    assert portal.downloads == ["/files/R-101.pdf"]
    assert [p for p in (tmp_path / "archive").rglob("*.pdf") if b"R-101" in p.read_bytes()]


def problems(options: dict) -> dict[str, str]:
    return dict(FormConnector.check_options(options))


def test_detail_descriptions_are_checked_with_their_option_paths():
    good = description("https://portal.example", "html", rows=True)
    assert problems(good) == {}
    assert problems(description("https://portal.example", "json", rows=False)) == {}
    bad = description("https://portal.example", "html", rows=False)
    bad["documents"]["download"] = {"selector": "a.pdf"}
    bad["documents"]["detail"]["fields"]["id"] = {"selector": "h1"}
    bad["documents"]["detail"].pop("link")
    bad["documents"]["detail"]["rows"] = "li[oops"
    found = problems(bad)
    assert "documents.detail.download" in found["documents.download"]
    assert found["documents.detail.link"].startswith("missing")
    assert "invalid CSS selector" in found["documents.detail.rows"]
    one = description("https://portal.example", "json", rows=False)
    one["documents"]["detail"]["fields"]["id"] = "code"
    assert "only with detail.rows" in problems(one)["documents.detail.fields.id"]


def test_a_document_listed_as_known_is_read_from_its_page_when_downloaded_after_all(tmp_path):
    portal = Portal(orders={"A1": ORDERS["A1"]})
    with serve(portal) as served:
        setup = ShopSetup(portal, served.url, served.requests, tmp_path)
        connector = setup.connector(options=description(served.url, "html", rows=False))
        connector.ctx.known = lambda ref: True
        connector.login()
        [doc] = list(connector.documents())
        assert portal.detail_requests == []  # listed without its page
        data, _ = connector.download(doc)
    assert data.startswith(b"%PDF") and portal.downloads == ["/files/R-101.pdf"]
    assert portal.detail_requests == ["/orders/A1"]
