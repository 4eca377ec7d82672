"""JSON lists of the form connector (`documents.type: json`) against an API served on loopback.

The portal logs in through an HTML form, as many do, then lists its invoices as JSON from an
endpoint that needs the session cookie, in each paging style real APIs use (a next URL, a
cursor token, page numbers, offsets), and hands out the files as links, by id, or base64
inside the answer.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field

import pytest
import yaml

from connectors.form.connector import FormConnector
from gmid.errors import DownloadRejected, PortalChanged, SessionExpired
from tests.connectors.test_form import PASSWORD, USER, with_changes
from tests.connectors.test_form import Setup as ShopSetup
from tests.support.connector_contract import ConnectorContract, ContractPortal
from tests.support.portal_http import Request, serve
from tests.support.runner import started_runner


def pdf(name: str) -> bytes:
    return f"%PDF-1.4\n% {name}\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".encode()


INVOICES = [  # id, date, cents
    ("2024/06", "2024-06-30", 123450),
    ("2024/05", "2024-05-31", 9900),
    ("2024/04", "2024-04-30", -1230),
    ("2024/03", "2024-03-31", 99),
    ("2024/02", "2024-02-29", 100000000),
]

DESCRIPTION = """\
start: {url}/login
login:
  success: {{selector: "a.logout"}}
  failure: {{selector: ".error"}}
documents:
  type: json
  pages: [/api/invoices]
  rows: "data.invoices"
  fields:
    id: {{path: id}}
    date: {{path: issued, formats: ["%Y-%m-%d"]}}
    number: {{path: id, regex: "(\\\\d+/\\\\d+)"}}
    amount: {{path: total_cents, cents: true}}
    title: {{path: "meta.title"}}
  download: {{path: "links.pdf"}}
  next: {{path: "links.next"}}
"""


@dataclass
class Api:
    """The portal: an HTML login form, then a JSON list that needs the session cookie."""

    paging: str = "next"  # next | token | page | offset | loop | token-loop | ignored
    per_page: int = 2
    invoices: list[tuple[str, str, int]] = field(default_factory=lambda: list(INVOICES))
    layout: str = "json"  # json | changed | html
    expire_after: int | None = None  # the session ends after this many list answers
    unauthorized: str = "login"  # without a session: "login" redirects, "401" answers JSON
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    list_requests: list[Request] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)

    def __call__(self, request: Request):
        if request.path == "/login":
            return self.login(request) if request.method == "POST" else self.login_page()
        if request.cookies.get("sid") not in self.sessions:
            if self.unauthorized == "401" and request.path.startswith("/api/"):
                return 401, {"Content-Type": "application/json"}, '{"error": "unauthorized"}'
            return 302, {"Location": "/login"}, b""
        if request.path == "/home":
            return html("<a class='logout' href='/logout'>Abmelden</a>")
        if request.path == "/api/invoices":
            return self.invoice_list(request)
        if request.path.startswith("/files/") or request.path.endswith("/download"):
            self.downloads.append(request.path)
            return 200, {"Content-Type": "application/octet-stream"}, pdf(request.path)
        if request.path == "/list.html":  # an HTML list whose links lead to a help page
            return html("<table><tr><td><a class='pdf' href='/help'>PDF</a></td></tr></table>")
        if request.path == "/help":
            return html("<h1>Hilfe</h1><p>So laden Sie Rechnungen herunter.</p>")
        return 404, {}, b"not found"

    def login_page(self, error: str = ""):
        return html(
            f"<p class='error'>{error}</p>"
            "<form method='post' action='/login'><input name='email'>"
            "<input type='password' name='password'><button>Anmelden</button></form>"
        )

    def login(self, request: Request):
        form = {k: v[-1] for k, v in request.form().items()}
        if form.get("email") != USER or form.get("password") != PASSWORD:
            return self.login_page("E-Mail oder Passwort falsch")
        self.logins += 1
        sid = secrets.token_hex(8)
        self.sessions.add(sid)
        return 303, [("Location", "/home"), ("Set-Cookie", f"sid={sid}; Path=/")], b""

    def invoice_list(self, request: Request):
        self.list_requests.append(request)
        if self.expire_after is not None and len(self.list_requests) > self.expire_after:
            self.sessions.clear()
            self.expire_after = None
            return self(request)
        if self.layout == "html":
            return html("<h1>Rechnungen</h1><p>Die neue Rechnungsübersicht</p>")
        start, links = self.window(request)
        rows = [self.row(*invoice) for invoice in self.invoices[start : start + self.per_page]]
        if self.layout == "changed":
            return as_json({"result": {"items": rows}})
        return as_json({"data": {"invoices": rows, "total": len(self.invoices)}, **links})

    def window(self, request: Request) -> tuple[int, dict]:
        """Where this answer's page starts, and what it says about the next."""
        query = {k: v[-1] for k, v in request.query.items()}
        if self.paging in ("page", "ignored"):
            page = int(query.get("page", "1")) if self.paging == "page" else 1
            return (page - 1) * self.per_page, {}
        if self.paging == "offset":
            return int(query.get("offset", "0")), {}
        if self.paging in ("token", "token-loop"):
            start = int(query["cursor"].removeprefix("c")) if "cursor" in query else 0
            after = start + self.per_page
            more = after < len(self.invoices)
            token = "c2" if self.paging == "token-loop" else f"c{after}"  # loop: c2 again
            return start, {"cursor": token if more else None}
        start = int(query.get("from", "0"))
        after = 2 if self.paging == "loop" else start + self.per_page  # loop: ?from=2 again
        more = self.paging == "loop" or after < len(self.invoices)
        return start, {"links": {"next": f"/api/invoices?from={after}" if more else None}}

    def row(self, number: str, date: str, cents: int) -> dict:
        return {
            "id": number,
            "issued": date,
            "total_cents": cents,
            "total": cents / 100,
            "price": {"value": f"{cents / 100:.2f}", "currency": "EUR"},
            "meta": {"title": f"Strom {date[:7]}"},
            "links": {"pdf": f"/files/{number.replace('/', '-')}.pdf"},
            "content": base64.b64encode(pdf(number)).decode(),
        }


def html(body: str):
    page = f"<!doctype html><html><body>{body}</body></html>"
    return 200, {"Content-Type": "text/html; charset=utf-8"}, page


def as_json(data):
    return 200, {"Content-Type": "application/json"}, json.dumps(data)


def describe(url: str, **changes) -> dict:
    """The API's description; `a__b=value` sets options["a"]["b"] (None removes it)."""
    return with_changes(yaml.safe_load(DESCRIPTION.format(url=url)), **changes)


class Setup(ShopSetup):
    """The API running, and form connectors bound to it (as in test_form.py)."""

    def description(self, **changes) -> dict:
        return describe(self.url, **changes)

    def connector(self, *, password=PASSWORD, browser=None, **changes) -> FormConnector:
        options = self.description(**changes)
        return super().connector(password=password, browser=browser, options=options)

    def documents(self, **changes):
        connector = self.connector(**changes)
        connector.login()
        return connector, list(connector.documents())

    def listing_fails(self, error=PortalChanged, **changes) -> str:
        """Log in, list, and return the message of the error the listing ends with."""
        connector = self.connector(**changes)
        connector.login()
        with pytest.raises(error) as info:
            list(connector.documents())
        return str(info.value)


@pytest.fixture
def api():
    return Api()


@pytest.fixture
def setup(api, tmp_path):
    with serve(api) as portal:
        yield Setup(api, portal.url, portal.requests, tmp_path)


class TestJsonContract(ConnectorContract):
    @pytest.fixture
    def contract_portal(self, tmp_path):
        api = Api()
        with serve(api) as portal:
            setup = Setup(api, portal.url, portal.requests, tmp_path)

            def connect(password=None, browser=None):
                return setup.connector(password=password or PASSWORD, browser=browser)

            yield ContractPortal(connect=connect, wrong_password="wrong horse")


# -- rows, fields, amounts


def test_a_json_list_after_a_form_login_with_its_fields_over_next_links(setup, api):
    connector, docs = setup.documents()
    assert [d.id for d in docs] == [i[0] for i in INVOICES]
    first = docs[0]
    assert (str(first.date), first.number, first.amount) == ("2024-06-30", "2024/06", "1234.50")
    assert first.title == "Strom 2024-06"
    assert [d.amount for d in docs] == ["1234.50", "99.00", "-12.30", "0.99", "1000000.00"]
    assert first.url == f"{setup.url}/files/2024-06.pdf"
    # three answers, each asked for with the session cookie, the next one where it said
    assert [r.query.get("from") for r in api.list_requests] == [None, ["2"], ["4"]]
    assert all(r.headers["accept"].startswith("application/json") for r in api.list_requests)
    data, _ = connector.download(first)
    assert data == pdf("/files/2024-06.pdf")


@pytest.mark.parametrize(
    "amount, expected",
    [
        ({"path": "total"}, ["1234.5", "99.0", "-12.3", "0.99", "1000000.0"]),
        ({"path": "price"}, ["1234.50", "99.00", "-12.30", "0.99", "1000000.00"]),
        ({"path": "total", "decimal": ","}, ["1234.5", "99.0", "-12.3", "0.99", "1000000.0"]),
    ],
    ids=["number", "value-currency-object", "number-with-decimal-comma"],
)
def test_amounts_as_json_numbers_and_value_objects(setup, amount, expected):
    _, docs = setup.documents(documents__fields__amount=amount)
    assert [d.amount for d in docs] == expected


# -- paging


@pytest.mark.parametrize(
    "paging, options, queries",
    [
        (
            "token",
            {"next": {"path": "cursor", "param": "cursor"}},
            [{}, {"cursor": ["c2"]}, {"cursor": ["c4"]}],
        ),
        (
            "page",
            {"page": {"param": "page", "start": 1}},
            [{"page": [str(n)]} for n in (1, 2, 3, 4)],
        ),
        (  # the portal gives at most 2 rows, whatever the limit asked: read until empty
            "offset",
            {"offset": {"param": "offset", "limit_param": "limit", "limit": 100}},
            [{"offset": [str(n)], "limit": ["100"]} for n in (0, 2, 4, 5)],
        ),
    ],
    ids=["cursor-token", "page-number", "offset-limit"],
)
def test_each_paging_style_reads_every_page_and_stops(setup, api, paging, options, queries):
    api.paging = paging
    changes = {f"documents__{key}": value for key, value in options.items()}
    _, docs = setup.documents(**{"documents__next": None, **changes})
    assert [d.id for d in docs] == [i[0] for i in INVOICES]
    assert [r.query for r in api.list_requests] == queries


@pytest.mark.parametrize("paging", ["loop", "token-loop", "ignored"])
def test_a_paging_that_loops_stops(setup, api, paging):
    api.paging = paging
    changes = {
        "loop": {},
        "token-loop": {"documents__next": {"path": "cursor", "param": "cursor"}},
        "ignored": {"documents__next": None, "documents__page": {"param": "page"}},
    }[paging]
    _, docs = setup.documents(**changes)
    ids = [i[0] for i in INVOICES]
    assert [d.id for d in docs] == (ids[:2] if paging == "ignored" else ids[:4])
    assert len(api.list_requests) == 2


def test_max_pages_bounds_a_json_list(setup, api):
    api.per_page = 1
    _, docs = setup.documents(documents__max_pages=2)
    assert len(docs) == 2 and len(api.list_requests) == 2


# -- downloads


def test_a_download_url_made_of_the_rows_fields_is_url_quoted(setup, api):
    download = {"url": "/api/invoices/{id}/download"}
    connector, docs = setup.documents(documents__download=download)
    assert docs[0].url == f"{setup.url}/api/invoices/2024%2F06/download"
    data, _ = connector.download(docs[0])
    assert data.startswith(b"%PDF") and api.downloads == ["/api/invoices/2024%2F06/download"]


def test_a_document_base64_inside_the_answer_is_not_fetched(setup, api):
    connector, docs = setup.documents(documents__download={"base64": {"path": "content"}})
    assert connector.download(docs[-1])[0] == pdf("2024/02")
    # a document of a page read before is found again in that page's answer
    assert connector.download(docs[1])[0] == pdf("2024/05")
    assert api.downloads == []


def test_an_html_page_instead_of_a_document_names_the_download_option(setup):
    connector, docs = setup.documents(documents__download={"url": "/help?id={id}"})
    with pytest.raises(DownloadRejected) as info:
        connector.download(docs[0])
    assert "HTML page instead of a document" in str(info.value)
    assert "documents.download.url" in str(info.value)


def test_a_download_that_shows_the_login_form_is_session_expired(setup, api):
    connector, docs = setup.documents()
    api.sessions.clear()
    with pytest.raises(SessionExpired):
        connector.download(docs[0])


def test_in_html_lists_too_an_html_page_instead_of_a_document_names_the_option(setup):
    html_list = {"pages": "/list.html", "rows": "tr", "download": "a.pdf"}
    connector, [doc] = setup.documents(documents=html_list)
    with pytest.raises(DownloadRejected) as info:
        connector.download(doc)
    assert "check documents.download, which must lead to the file itself" in str(info.value)


# -- failures


def test_a_changed_structure_is_portal_changed_naming_the_path(setup, api):
    api.layout = "changed"
    message = setup.listing_fails()
    assert "documents.rows: path 'data.invoices' matched nothing" in message
    assert b'"items"' in setup.saved[-1].read_bytes()  # the answer is kept for diagnosis


def test_a_row_without_its_link_is_portal_changed_naming_the_path(setup):
    message = setup.listing_fails(documents__download={"path": "links.zip"})
    assert "documents.download: path 'links.zip' matched nothing" in message


def test_an_html_page_instead_of_json_is_portal_changed(setup, api):
    api.layout = "html"
    message = setup.listing_fails()
    assert "documents.pages: the answer is text/html, not JSON" in message


@pytest.mark.parametrize("unauthorized", ["login", "401"])
def test_the_login_page_or_a_401_instead_of_json_is_session_expired(setup, api, unauthorized):
    api.unauthorized, api.expire_after = unauthorized, 1
    assert setup.connector().session_valid() is False
    connector = setup.connector()
    connector.login()
    docs = connector.documents()
    assert [next(docs).id, next(docs).id] == ["2024/06", "2024/05"]
    with pytest.raises(SessionExpired):
        next(docs)


def test_an_empty_list_needs_its_empty_mark(setup, api):
    api.invoices = []
    message = setup.listing_fails()
    assert "documents.rows: path 'data.invoices' gave an empty list" in message
    assert "documents.empty" in message
    marked = setup.connector(documents__empty={"path": "data.total == `0`"})
    marked.login()
    assert list(marked.documents()) == []


# -- through the runner: archived once, a session that ends is logged in again

RUNNER_CONFIG = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
portals:
  - name: api
    company: Stadtwerke API
    username: {user}
    password: {{command: "echo {password}"}}
    form: {form}
"""


async def _runs(tmp_path, url, times: int, **changes):
    path = tmp_path / "config.yaml"
    form = json.dumps(describe(url, **changes))
    path.write_text(RUNNER_CONFIG.format(tmp=tmp_path, user=USER, password=PASSWORD, form=form))
    async with started_runner(path) as (runner, _config, index):
        return [await runner.fetch("api") for _ in range(times)], index.count()


@pytest.mark.parametrize(
    "download",
    [
        {"path": "links.pdf"},
        {"url": "/api/invoices/{id}/download"},
        {"base64": {"path": "content"}},
    ],
    ids=["link", "url", "base64"],
)
async def test_a_second_run_downloads_nothing_new(tmp_path, api, download):
    with serve(api) as portal:
        (first, second), filed = await _runs(tmp_path, portal.url, 2, documents__download=download)
    assert (first.outcome, first.new_documents) == ("ok", 5), first.message
    assert (second.outcome, second.new_documents) == ("ok", 0), second.message
    assert filed == 5 and len(api.downloads) == (0 if "base64" in download else 5)


async def test_a_session_that_ends_mid_list_is_logged_in_again_once(tmp_path, api):
    api.expire_after = 1
    with serve(api) as portal:
        [record], filed = await _runs(tmp_path, portal.url, 1)
    assert record.outcome == "ok", record.message
    assert api.logins == 2 and filed == 5


# -- the description, checked at config time


def problems(options: dict) -> dict[str, str]:
    return dict(FormConnector.check_options(options))


def test_a_good_json_description_has_no_problems():
    assert problems(describe("https://api.example")) == {}
    smallest = {
        "start": "https://api.example/login",
        "documents": {"type": "json", "pages": "/api/invoices", "rows": "@", "download": "url"},
    }
    assert problems(smallest) == {}


def test_json_description_problems_are_reported_with_their_paths():
    options = describe(
        "https://api.example",
        documents__rows="data.invoices[",
        documents__page={"param": "page"},
    )
    fields = options["documents"]["fields"]
    fields["amount"] = {"path": "total", "cents": "yes", "selector": "td"}
    fields["date"] = {"formats": ["%d.%m"]}
    options["documents"]["download"] = {"url": "/pdf/{nr}", "path": "links.pdf"}
    found = problems(options)
    assert found.pop("documents.rows").startswith("invalid JMESPath expression 'data.invoices['")
    assert found.pop("documents.page") == "give only one of `next`, `page`"
    assert found.pop("documents.fields.amount.cents") == "expected true or false, got 'yes'"
    assert found.pop("documents.fields.amount.selector").startswith("unknown option")
    assert found.pop("documents.fields.date.path").startswith("missing")
    assert "no year" in found.pop("documents.fields.date.formats[0]")
    assert found.pop("documents.download").startswith("give one of `path:`")
    assert found == {}
    options["documents"]["download"] = {"url": "/pdf/{nr}"}
    assert problems(options)["documents.download.url"].startswith("{nr} is not one of the row's")
    options["documents"]["download"] = {"url": "javascript:alert({id})"}
    assert problems(options)["documents.download.url"].startswith("expected a web address")
    options["documents"]["download"] = {"base64": "content"}
    del options["documents"]["fields"]["id"]
    assert problems(options)["documents.download.base64"].startswith("needs documents.fields.id")
    missing = problems({"start": "https://api.example/", "documents": {"type": "json"}})
    assert missing["documents.rows"].startswith("missing: the JMESPath")
    assert {"documents.pages", "documents.download"} <= missing.keys()
