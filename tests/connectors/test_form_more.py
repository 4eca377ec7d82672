"""Periods, steps before the list and downloads through forms, against a portal on loopback.

The portal ("Stadtwerke") lists one year per page (/invoices?year=2025), shows a notice to
accept and has two customer accounts to switch between (a form with a CSRF token), and hands
out each invoice through a POST form in its row, which must carry the session's CSRF token.
"""

from __future__ import annotations

import datetime
import json
import secrets
from dataclasses import dataclass, field

import pytest

from connectors.form.connector import FormConnector
from connectors.form.periods import Period, PeriodSpec, each
from tests.connectors.test_form import PASSWORD, USER, with_changes
from tests.connectors.test_form_json import Setup as JsonSetup
from tests.connectors.test_form_json import html, pdf
from tests.support.portal_http import Request, serve
from tests.support.runner import started_runner

YEAR = datetime.datetime.now(datetime.UTC).year  # the connector's current year is UTC's


def invoices() -> dict[str, list[tuple[str, str]]]:
    """Per account, (id, date): none this year in the main account, as in any January."""
    return {
        "10001": [
            (f"R-{YEAR - 1}-2", f"{YEAR - 1}-11-30"),
            (f"R-{YEAR - 1}-1", f"{YEAR - 1}-02-28"),
            (f"R-{YEAR - 2}-1", f"{YEAR - 2}-06-30"),
            (f"R-{YEAR - 4}-1", f"{YEAR - 4}-06-30"),  # older than three years
        ],
        "12345": [(f"K-{YEAR}-1", f"{YEAR}-01-31"), (f"K-{YEAR - 1}-1", f"{YEAR - 1}-12-31")],
    }


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_hex(8))
    account: str = "10001"
    notice_seen: bool = False
    year: str = ""  # the year chosen in the filter form, kept in the session


@dataclass
class Stadtwerke:
    """The portal: a login form, a notice, an account switch, one year per list page."""

    notice: bool = False  # the list shows a notice until it is accepted
    one_form: bool = False  # the whole list is one form, a button per row
    accounts: dict[str, list[tuple[str, str]]] = field(default_factory=invoices)
    sessions: dict[str, Session] = field(default_factory=dict)
    years: list[str] = field(default_factory=list)  # the years the list was asked for
    downloads: list[dict[str, str]] = field(default_factory=list)
    accepted_by: list[str] = field(default_factory=list)

    def __call__(self, request: Request):
        if request.path == "/login":
            return self.login(request) if request.method == "POST" else self.login_page()
        session = self.sessions.get(request.cookies.get("sid", ""))
        if session is None:
            return 302, {"Location": "/login"}, b""
        form = {k: v[-1] for k, v in request.form().items()}
        if request.path == "/home":
            return html("<a class='logout' href='/logout'>Abmelden</a>")
        if request.path == "/notice/accept":
            session.notice_seen = True
            self.accepted_by += request.query.get("user", [])
            return html("<p>Danke</p>")
        if request.path == "/accounts" and request.method == "GET":
            return html(
                "<form id='account' method='post' action='/accounts'>"
                f"<input type='hidden' name='csrf' value='{session.csrf}'>"
                "<select name='customer'><option>10001</option><option>12345</option></select>"
                "<button>Wechseln</button></form>"
            )
        if request.path == "/accounts":
            if form.get("csrf") == session.csrf and form.get("customer") in self.accounts:
                session.account = form["customer"]
            return 303, {"Location": "/home"}, b""
        if request.path == "/filter" and request.method == "GET":
            options = "".join(f"<option>{year}</option>" for year in range(YEAR, YEAR - 6, -1))
            return html(
                "<form id='filter' method='post' action='/filter'>"
                f"<input type='hidden' name='csrf' value='{session.csrf}'>"
                f"<select name='jahr'>{options}</select><button>Anzeigen</button></form>"
            )
        if request.path == "/filter":
            session.year = form["jahr"] if form.get("csrf") == session.csrf else ""
            return 303, {"Location": "/invoices"}, b""
        if request.path == "/invoices":
            return self.invoice_list(request, session)
        if request.path == "/api/invoices":  # the same list as JSON: {"items": [...]}
            year = request.query.get("year", [""])[-1]
            self.years.append(year)
            items = [{"id": nr, "date": date} for nr, date in self.accounts[session.account]]
            listed = [item for item in items if item["date"].startswith(year)]
            return 200, {"Content-Type": "application/json"}, json.dumps({"items": listed})
        if request.path == "/download" and request.method == "POST":
            return self.download(request, form, session)
        if request.path.startswith("/files/"):
            self.downloads.append({"invoice": request.path[7:].removesuffix(".pdf")})
            return 200, {"Content-Type": "application/pdf"}, pdf(request.path[7:-4])
        return 404, {}, b"not found"

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
        self.sessions[sid] = Session()
        return 303, [("Location", "/home"), ("Set-Cookie", f"sid={sid}; Path=/")], b""

    def invoice_list(self, request: Request, session: Session):
        if self.notice and not session.notice_seen:
            return html("<a class='logout'>Abmelden</a><p class='notice'>Neue AGB</p>")
        year = request.query.get("year", [session.year])[-1]
        self.years.append(year)
        rows = "".join(
            f"<tr><td class='nr'>{nr}</td><td class='date'>{date}</td>"
            f"<td><a class='pdf' href='/files/{nr}.pdf'>PDF</a>"
            "<form class='download' method='post' action='/download'>"
            f"<input type='hidden' name='csrf' value='{session.csrf}'>"
            f"<input type='hidden' name='invoice' value='{nr}'>"
            "<button name='format' value='pdf'>PDF</button></form></td></tr>"
            for nr, date in self.accounts[session.account]
            if date.startswith(year)
        )
        if self.one_form:
            rows = "".join(
                f"<tr><td class='nr'>{nr}</td><td class='date'>{date}</td><td>"
                f"<button class='pdf' name='invoice' value='{nr}'>PDF</button></td></tr>"
                for nr, date in self.accounts[session.account]
                if date.startswith(year)
            )
            return html(
                "<a class='logout'>Abmelden</a><form method='post' action='/download'>"
                f"<input type='hidden' name='csrf' value='{session.csrf}'>"
                f"<table class='invoices'>{rows}</table></form>"
            )
        return html(f"<a class='logout'>Abmelden</a><table class='invoices'>{rows}</table>")

    def download(self, request: Request, form: dict[str, str], session: Session):
        """Like Django: the token of the session, sent from a page of this portal."""
        self.downloads.append(form)
        referer = request.headers.get("referer", "")
        if form.get("csrf") != session.csrf or referer.split("/")[2:3] != [request.headers["host"]]:
            return 403, {"Content-Type": "text/html"}, "<!doctype html><p>Ungültige Anfrage</p>"
        return 200, {"Content-Type": "application/pdf"}, pdf(form.get("invoice", ""))


def describe(url: str, **changes) -> dict:
    """The portal's description, one year per page; `a__b=value` changes it."""
    options = {
        "start": f"{url}/login",
        "login": {"success": {"selector": "a.logout"}},
        "documents": {
            "pages": ["/invoices?year={year}"],
            "periods": {"years": 3},
            "rows": "table.invoices tr",
            "fields": {"id": {"selector": "td.nr"}, "date": {"selector": "td.date"}},
            "download": {"selector": "a.pdf"},
        },
    }
    return with_changes(options, **changes)


BEFORE = [
    {"get": "/notice/accept?user={username}"},
    {"form": "form#account", "page": "/accounts", "fields": {"customer": "12345"}},
]
POST = {"form": "form.download"}


class Setup(JsonSetup):
    def description(self, **changes) -> dict:
        return describe(self.url, **changes)


@pytest.fixture
def portal():
    return Stadtwerke()


@pytest.fixture
def setup(portal, tmp_path):
    with serve(portal) as served:
        yield Setup(portal, served.url, served.requests, tmp_path)


# -- periods


def test_each_year_is_listed_newest_first_and_an_empty_current_year_is_fine(setup, portal):
    _, docs = setup.documents()
    assert [d.id for d in docs] == [f"R-{YEAR - 1}-2", f"R-{YEAR - 1}-1", f"R-{YEAR - 2}-1"]
    assert portal.years == [str(YEAR), str(YEAR - 1), str(YEAR - 2)]  # not one more


def test_years_that_all_list_nothing_are_portal_changed(setup, portal):
    message = setup.listing_fails(documents__periods={"years": 1})
    assert message.startswith("shop: documents.rows: selector 'table.invoices tr' matched nothing")
    assert "documents.empty" in message
    assert portal.years == [str(YEAR)]


def test_a_json_list_is_read_one_year_after_the_other(setup, portal):
    documents = {
        "type": "json",
        "pages": "/api/invoices?year={year}",
        "periods": {"years": 2},
        "rows": "items",
        "fields": {"id": "id", "date": "date"},
        "download": {"url": "/files/{id}.pdf"},
    }
    _, docs = setup.documents(documents=documents)
    assert [d.id for d in docs] == [f"R-{YEAR - 1}-2", f"R-{YEAR - 1}-1"]
    assert portal.years == [str(YEAR), str(YEAR - 1)]
    documents["periods"] = {"years": 1}
    message = setup.listing_fails(documents=documents)
    assert "documents.rows: path 'items' gave an empty list" in message


def test_months_count_back_over_the_turn_of_the_year():
    january = datetime.date(2026, 1, 20)
    months = [str(p) for p in each(PeriodSpec("months", 3), january)]
    assert months == ["2026-01", "2025-12", "2025-11"]
    assert Period(2025, 12).fill("/invoices?von={year}-{month}-01&q={x}") == (
        "/invoices?von=2025-12-01&q={x}"
    )
    assert [str(p) for p in each(PeriodSpec("years", 2), january)] == ["2026", "2025"]


# -- steps before the list


def test_steps_before_the_list_accept_the_notice_and_switch_the_account(setup, portal):
    portal.notice = True
    _, docs = setup.documents(documents__before=BEFORE)
    assert [d.id for d in docs] == [f"K-{YEAR}-1", f"K-{YEAR - 1}-1"]
    assert portal.accepted_by == [USER]
    switch = setup.posts("/accounts")[-1].form()
    assert switch["customer"] == ["12345"] and len(switch["csrf"][0]) == 16


def test_without_the_steps_the_notice_is_no_list(setup, portal):
    portal.notice = True
    message = setup.listing_fails()
    assert "documents.rows: selector 'table.invoices tr' matched nothing" in message


def test_a_step_whose_form_is_missing_is_portal_changed_naming_the_step(setup):
    steps = [BEFORE[0], {**BEFORE[1], "form": "form#konto"}]
    message = setup.listing_fails(documents__before=steps)
    assert "documents.before[1].form: selector 'form#konto' found no form" in message
    steps = [{**BEFORE[1], "fields": {"kunde": "12345"}}]
    message = setup.listing_fails(documents__before=steps)
    assert "documents.before[0].fields.kunde: no input named 'kunde'" in message
    message = setup.listing_fails(documents__before=[{"get": "/konto/wechseln"}])
    assert "documents.before[0].get: HTTP 404 at " in message


def test_a_step_may_choose_the_period_and_is_then_made_for_each(setup, portal):
    steps = [{"get": "/notice/accept?user={year}"}]
    setup.documents(documents__before=steps, documents__periods={"years": 2})
    assert portal.accepted_by == [str(YEAR), str(YEAR - 1)]


def test_a_year_chosen_in_a_filter_form_is_chosen_again_for_each_period(setup, portal):
    steps = [{"form": "form#filter", "page": "/filter", "fields": {"jahr": "{year}"}}]
    _, docs = setup.documents(documents__pages="/invoices", documents__before=steps)
    assert [d.id for d in docs] == [f"R-{YEAR - 1}-2", f"R-{YEAR - 1}-1", f"R-{YEAR - 2}-1"]
    assert [r.form()["jahr"] for r in setup.posts("/filter")] == [
        [str(YEAR)],
        [str(YEAR - 1)],
        [str(YEAR - 2)],
    ]


# -- downloads through a form in the row


def test_a_download_form_is_posted_with_its_csrf_token(setup, portal):
    connector, docs = setup.documents(documents__download=POST)
    first = docs[0]
    assert (first.id, first.method, first.url) == (
        f"R-{YEAR - 1}-2",
        "POST",
        f"{setup.url}/download",
    )
    data, _ = connector.download(first)
    assert data == pdf(f"R-{YEAR - 1}-2")
    [sent] = portal.downloads
    assert sent["invoice"] == f"R-{YEAR - 1}-2" and sent["format"] == "pdf"
    assert sent["csrf"] == next(iter(portal.sessions.values())).csrf


def test_in_a_list_that_is_one_form_the_rows_button_is_the_one_clicked(setup, portal):
    portal.one_form = True
    connector, docs = setup.documents(documents__download={"form": "button.pdf"})
    data, _ = connector.download(docs[1])
    assert data == pdf(f"R-{YEAR - 1}-1")
    [sent] = portal.downloads
    assert sent["invoice"] == f"R-{YEAR - 1}-1" and "csrf" in sent
    assert setup.posts("/download")[0].form()["invoice"] == [f"R-{YEAR - 1}-1"]  # only its own


# -- through the runner: a second run downloads nothing new

RUNNER_CONFIG = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
portals:
  - name: stadtwerke
    company: Stadtwerke
    username: {user}
    password: {{command: "echo {password}"}}
    form: {form}
"""


@pytest.mark.parametrize(
    "changes, filed",
    [
        ({}, 3),
        ({"documents__before": BEFORE}, 2),
        ({"documents__download": POST, "documents__periods": {"years": 5}}, 4),
    ],
    ids=["periods", "before", "post"],
)
async def test_a_second_run_downloads_nothing_new(tmp_path, portal, changes, filed):
    portal.notice = "documents__before" in changes
    with serve(portal) as served:
        path = tmp_path / "config.yaml"
        form = json.dumps(describe(served.url, **changes))
        config = RUNNER_CONFIG.format(tmp=tmp_path, user=USER, password=PASSWORD, form=form)
        path.write_text(config)
        async with started_runner(path) as (runner, _config, index):
            first, second = [await runner.fetch("stadtwerke") for _ in range(2)]
            filed_now = index.count()
    assert (first.outcome, first.new_documents) == ("ok", filed), first.message
    assert (second.outcome, second.new_documents) == ("ok", 0), second.message
    assert filed_now == filed
    posted = "documents__download" in changes  # each with the session's token
    assert all(("csrf" in sent) == posted for sent in portal.downloads)


# -- the description, checked at config time


def problems(**changes) -> dict[str, str]:
    return dict(FormConnector.check_options(describe("https://portal.example", **changes)))


def test_good_descriptions_have_no_problems():
    assert problems() == {}
    assert problems(documents__before=BEFORE, documents__download=POST) == {}
    assert (
        problems(documents__pages="/invoices?von={year}-{month}", documents__periods={"months": 36})
        == {}
    )


def test_period_and_step_problems_are_reported_with_their_paths():
    found = problems(documents__pages=["/invoices?year={year}", "/credits?m={month}"])
    assert found == {
        "documents.pages[1]": "{month} needs documents.periods.months; with years, use {year}",
    }
    assert problems(documents__periods=None)["documents.pages[0]"].startswith(
        "{year} and {month} need documents.periods"
    )
    assert problems(documents__pages="/invoices")["documents.periods"].startswith("no {year}")
    assert problems(documents__periods={"years": 11})["documents.periods.years"] == (
        "expected a whole number from 1 to 10, got 11"
    )
    assert problems(documents__periods={"years": 2, "months": 3})["documents.periods"].startswith(
        "give one of"
    )
    steps = [{"form": "form#account"}, {"get": "/x", "form": "form"}, {"get": "/x", "fields": {}}]
    found = problems(documents__before=steps)
    assert found.pop("documents.before[0].page").startswith("missing: the page")
    assert found.pop("documents.before[1]") == "give one of `get: URL` or `form: SELECTOR`"
    assert found.pop("documents.before[2].fields").startswith("only with `form:`")
    assert found == {}
    assert problems(documents__before={"get": "/x"})["documents.before"].startswith(
        "expected a list"
    )
    fields = {"date": {"selector": "td.date"}}
    found = problems(documents__download=POST, documents__fields=fields)
    assert found == {
        "documents.download.form": (
            "needs documents.fields.id: the form's address is the same for every document"
        )
    }
    found = problems(documents__download={"form": "form[", "selector": "a"})
    assert set(found) == {"documents.download.form", "documents.download.selector"}
