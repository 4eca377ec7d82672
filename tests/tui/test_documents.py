"""The documents browser under the pilot, against a real daemon: the search narrows the rows,
Enter shows a document with its number, amount and rendered e-invoice, and `o` runs the opener
(a real process: GMID_OPENER names a script that writes down what it was given)."""

from __future__ import annotations

import io
import shutil
import sys
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import DataTable

from tests.conftest import make_daemon_dir
from tests.support.mails import invoice_mail, make_pdf
from tui.app import GmidApp
from tui.opener import ENV, opener
from tui.screens.document import DocumentScreen
from tui.screens.documents import DocumentsScreen

SIZE = (100, 40)
CORPUS = Path(__file__).parents[1] / "documents" / "corpus"


def _xml_mail(data: bytes) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "billing@supplier.example"
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = "Credit note"
    msg.set_content("Your credit note as UBL.\n")
    msg.add_attachment(data, maintype="application", subtype="xml", filename="credit-note.xml")
    return msg.as_bytes()


@pytest.fixture(scope="module")
def daemon():
    """A daemon that filed a Factur-X PDF (Telekom), a UBL credit note (its company named after
    its seller) and a PDF without e-invoice (Stadtwerke)."""
    d = make_daemon_dir().start()
    try:
        pdf = (CORPUS / "FX" / "XRECHNUNG_Einfach.pdf").read_bytes()
        credit_note = (CORPUS / "UBL" / "ubl-tc434-creditnote1.xml").read_bytes()
        for raw in (
            invoice_mail(sender="rechnung@telekom.example", pdfs=[("Rechnung.pdf", pdf)]),
            _xml_mail(credit_note),
            invoice_mail(sender="info@stadtwerke.example", pdfs=[("plain.pdf", make_pdf("x"))]),
        ):
            code, text = d.send(raw)
            assert code == 250, text
        yield d
    finally:
        code = d.stop()
        log = d.log_text()
        shutil.rmtree(d.dir, ignore_errors=True)
    assert code == 0 and "Traceback" not in log, log


async def until(pilot, predicate, timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def rows(app) -> int:
    return app.screen.query_one(DataTable).row_count


def shown(app, selector: str) -> str:
    """What a widget shows, as plain text (a Rich table drawn as the terminal would)."""
    content = app.screen.query_one(selector).content
    if isinstance(content, str | Text):
        return str(content)
    console = Console(width=SIZE[0], file=io.StringIO(), color_system=None)
    console.print(content)
    return console.file.getvalue()


def toasts(app) -> str:
    return " ".join(str(toast.render()) for toast in app.screen.query("Toast"))


async def _documents(pilot, app) -> DocumentsScreen:
    await until(pilot, lambda: app.model.connected, what="the daemon")
    await pilot.press("d")
    assert isinstance(app.screen, DocumentsScreen)
    await until(pilot, lambda: rows(app) == 3, what="every document")
    return app.screen


async def test_search_narrows_the_rows_and_enter_shows_the_document(daemon, tmp_path, monkeypatch):
    opened = tmp_path / "opened.txt"
    script = tmp_path / "opener.py"
    script.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    monkeypatch.setenv(ENV, f"{sys.executable} {script}")
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await _documents(pilot, app)
        table = screen.query_one(DataTable)
        assert [c.label.plain for c in table.columns.values()] == [
            "Date",
            "Number",
            "Amount",
            "Company",
        ]

        await pilot.press("slash", *"joghurt")  # a line of the invoice: its text is searched
        await until(pilot, lambda: rows(app) == 1, what="the search")
        assert [doc.company for doc in screen.docs] == ["Telekom"]
        assert "matching “joghurt”" in shown(app, "#doc-summary")
        row = [str(cell) for cell in table.get_row_at(0)]
        assert [cell.strip() for cell in row] == ["2018-03-05", "471102", "529.87 EUR", "Telekom"]
        await pilot.press("escape", "enter")  # back to the table; its one row

        await until(pilot, lambda: isinstance(app.screen, DocumentScreen), what="the detail")
        detail = app.screen
        await until(pilot, lambda: detail.einvoice is not None, what="the e-invoice")
        rendered = shown(app, "#doc-einvoice")
        assert "Invoice 471102" in rendered and "529.87 EUR" in rendered
        assert "Lieferant GmbH" in rendered and "Trennblätter A4" in rendered
        path = str(daemon.archive / screen.docs[0].path)
        assert detail.details.path == path
        assert path in shown(app, "#doc-path")
        assert "Invoice 471102 · Telekom · 529.87 EUR" in shown(app, "#doc-head")
        fields = {" ".join(line.split()) for line in shown(app, "#doc-fields").splitlines()}
        assert "Number 471102 e-invoice XML" in fields
        assert "Gross total 529.87 e-invoice XML" in fields
        assert "Company Telekom mail" in fields
        assert "passed every check" in shown(app, "#doc-check")
        assert "Sources (1)" in shown(app, "#doc-sources")
        assert "Rechnung.pdf" in shown(app, "#doc-sources")

        keys = {b.binding.key: b.binding.description for b in app.screen.active_bindings.values()}
        assert keys["o"] == "Open file"  # shown in the footer
        await pilot.press("o")
        await until(pilot, opened.exists, what="the opener")
        assert opened.read_text() == path
        assert f"opening {path}" in toasts(app)

        await pilot.press("escape")
        assert app.screen is screen and rows(app) == 1


async def test_an_xml_only_invoice_and_a_plain_pdf_in_the_detail_view(daemon):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _documents(pilot, app)
        by_name = {doc.original_name: i for i, doc in enumerate(screen.docs)}

        screen.query_one(DataTable).move_cursor(row=by_name["credit-note.xml"])
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "einvoice", None), what="the rendering")
        rendered = shown(app, "#doc-einvoice")
        assert "Credit note 018304 / 28865" in rendered and "100.11 EUR" in rendered
        await pilot.press("escape")

        screen.query_one(DataTable).move_cursor(row=by_name["plain.pdf"])
        await pilot.press("enter")
        await until(
            pilot, lambda: "no e-invoice XML" in shown(app, "#doc-einvoice"), what="the reason"
        )
        assert app.screen.einvoice is None


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({}, "no desktop to open it on"),
        ({"DISPLAY": ":0", "PATH": "/nonexistent"}, "xdg-open is not installed"),
        ({ENV: "false"}, "false failed (exit 1)"),
        ({ENV: "/nonexistent/viewer"}, "/nonexistent/viewer: No such file or directory"),
    ],
    ids=["no display", "no xdg-open", "failing opener", "missing opener"],
)
async def test_without_an_opener_the_path_is_shown_with_why(daemon, monkeypatch, env, said):
    for name in (ENV, "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await _documents(pilot, app)
        path = str(daemon.archive / screen.docs[0].path)
        await pilot.press("o")
        await until(pilot, lambda: said in toasts(app), what=said)
        assert path in toasts(app)


def test_the_opener_is_chosen_from_the_environment():
    assert opener({ENV: "open -a Preview"}).command == ["open", "-a", "Preview"]
    assert "not a command line" in opener({ENV: "open 'x"}).why_not
    assert opener({"WAYLAND_DISPLAY": "wayland-0", "PATH": "/nonexistent"}).command is None


HOSTILE_SELLER = "[bold red]Evil[/] \u009b2J \u202eGmbH"
HOSTILE_NUMBER = "[link=file:///etc/passwd]R-1[/link]"


@pytest.fixture
def hostile(daemon_dir):
    """A daemon that filed an e-invoice whose seller and number are written to harm."""
    xml = (CORPUS / "UBL" / "ubl-tc434-creditnote1.xml").read_text()
    xml = xml.replace(
        "<cbc:RegistrationName>My Supplier Company<",
        f"<cbc:RegistrationName>{HOSTILE_SELLER}<",
    ).replace("<cbc:ID>018304 / 28865<", f"<cbc:ID>{HOSTILE_NUMBER}<")
    daemon = daemon_dir.start()
    code, text = daemon.send(_xml_mail(xml.encode()))
    assert code == 250, text
    yield daemon
    assert daemon.stop() == 0, daemon.log_text()


async def test_a_hostile_invoice_is_shown_as_text_not_markup(hostile):
    """Seller and number are the sender's: Rich markup in them is shown as written, and a
    terminal control or bidi override never reaches the terminal."""
    daemon = hostile
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.model.connected, what="the daemon")
        await pilot.press("d")
        await until(pilot, lambda: rows(app) == 1, what="the document")
        row = " ".join(str(cell) for cell in app.screen.query_one(DataTable).get_row_at(0))
        assert "[link=file:///etc" in row and "[bold red]Evil[/]" in row  # clipped, as written
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "einvoice", None), what="the rendering")
        seen = shown(app, "#doc-fields") + shown(app, "#doc-head") + shown(app, "#doc-einvoice")
        assert "[bold red]Evil[/]" in seen and HOSTILE_NUMBER in seen
        assert "\u009b" not in seen and "\u202e" not in seen
        assert "\ufffd2J" in seen
