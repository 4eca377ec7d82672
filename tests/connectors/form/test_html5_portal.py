"""A portal written the old way, described with selectors copied from a browser.

Its pages are served on loopback as such portals send them: windows-1252 named only in a
<meta> tag, the login form opened inside a table, the invoice table without <tbody>, with
unclosed cells and rows. The description's selectors are what a browser's developer tools copy
(`tbody` in them), and the connector runs on the runner's own browser (make_browser).
"""

from __future__ import annotations

import pytest

from connectors.base import PortalContext
from connectors.form.connector import FormConnector
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.support.portal_http import Request, serve

USER, PASSWORD = "müller", "geheim"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

LOGIN = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">
<title>Kundenportal</title></head><body>
<table class=layout><form id=login method=post action=/login>
<tr><td>Benutzer<td><input name=user>
<tr><td>Passwort<td><input type=password name=pass>
<tr><td colspan=2><input type=submit value=Anmelden></form></table>
"""

INVOICES = """<html><head><meta charset="windows-1252"><title>Rechnungen</title>
<body><p>Willkommen, Müller<p><a class=logout href=/logout>Abmelden</a>
<table class="list invoices">
<tr><th>Datum<th>Nummer<th>Betrag<th>Datei
<tr><td>31.01.2026<td>R-2026-01<td>1.234,50 €<td><a href=/pdf/1><b>PDF</a></b>
<tr><td>28.02.2026<td>R-2026-02<td>99,00 €<td><a href=/pdf/2>PDF</a>
</table>
"""

DESCRIPTION = {
    "login": {
        "form": "form#login",
        "fields": {"username": "user", "password": "pass"},
        "success": {"selector": "a.logout"},
    },
    "documents": {
        "pages": ["/rechnungen"],
        # as Firefox's and Chrome's "Copy selector" give them, <tbody> included
        "rows": "table.invoices > tbody > tr:nth-child(n+2)",
        "fields": {
            "id": "td:nth-child(2)",
            "number": "td:nth-child(2)",
            "date": {"selector": "td:nth-child(1)", "formats": ["%d.%m.%Y"]},
            "amount": {"selector": "td:nth-child(3)", "decimal": ","},
        },
        "download": {"selector": "table.invoices > tbody > tr > td:nth-child(4) a"},
    },
}


def portal(request: Request):
    """The portal: the login form, then the list and its files for the logged-in session."""
    logged_in = request.cookies.get("sid") == "1"
    if request.path == "/login" and request.method == "POST":
        form = request.form()
        if form.get("user") == [USER] and form.get("pass") == [PASSWORD]:
            return 302, {"Location": "/rechnungen", "Set-Cookie": "sid=1; Path=/"}, b""
        return 200, {"Content-Type": "text/html"}, LOGIN.encode("cp1252")
    if request.path == "/rechnungen" and logged_in:
        return 200, {"Content-Type": "text/html"}, INVOICES.encode("cp1252")
    if request.path.startswith("/pdf/") and logged_in:
        return 200, {"Content-Type": "application/pdf"}, PDF
    return 200, {"Content-Type": "text/html"}, LOGIN.encode("cp1252")


@pytest.fixture
def connector(tmp_path):
    with serve(portal) as served:
        options = {"start": served.url + "/login", **DESCRIPTION}
        ctx = PortalContext(
            portal="altportal",
            username=USER,
            password=lambda: PASSWORD,
            browser=make_browser(HttpPolicy(timeout=10)),
            ask=lambda request: pytest.fail(f"nothing to ask: {request}"),
            wait_approval=lambda request, poll: None,
            save_page=lambda name, body: tmp_path / name,
            read_body=read_body,
            options=options,
        )
        yield FormConnector(ctx), served


def test_a_table_without_tbody_is_listed_with_a_selector_copied_from_a_browser(connector):
    form, served = connector
    form.login()
    docs = list(form.documents())
    assert [(d.number, d.date.isoformat(), str(d.amount)) for d in docs] == [
        ("R-2026-01", "2026-01-31", "1234.50"),
        ("R-2026-02", "2026-02-28", "99.00"),
    ]
    assert [d.url for d in docs] == [served.url + "/pdf/1", served.url + "/pdf/2"]
    assert form.download(docs[0])[0] == PDF


def test_the_login_form_inside_a_table_sends_its_inputs(connector):
    form, served = connector
    form.login()
    (post,) = [r.form() for r in served.requests if r.method == "POST"]
    assert post == {"user": [USER], "pass": [PASSWORD]}
    # the pages' windows-1252, named only in their <meta>, is read as such
    assert form.page.title.get_text() == "Rechnungen"
    assert "Willkommen, Müller" in form.page.get_text()
