"""What a user sees once gmid reads documents: real daemon, SMTP over TCP, a portal on loopback,
the control socket and the CLI.

The Factur-X is a public sample (tests/documents/corpus/): invoice 471102 of 2018-03-05 from
"Lieferant GmbH", VAT ID DE123456789, gross 529.87 EUR, with a line "Joghurt Banane".
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from gmid.control.protocol import INVALID_PARAMS, NOT_FOUND
from gmid.errors import ControlError
from tests.conftest import ROOT, make_daemon_dir
from tests.portals.test_runs import DEMO_FORM
from tests.support.mails import invoice_mail, make_pdf
from tests.support.portal_http import serve

CORPUS = ROOT / "tests" / "documents" / "corpus"
FACTURX = (CORPUS / "FX" / "EN16931_Einfach.pdf").read_bytes()
PORTAL_PDF = make_pdf("Rechnung 471102 vom 05.03.2018 - Lieferant GmbH")
NAME = "Lieferant/2018/2018-03-05 Lieferant 471102.pdf"

LOGIN_PAGE = """<html><body><form id="login" method="post" action="/login">
<input name="email"><input name="password" type="password"></form></body></html>"""
LIST_PAGE = """<html><body><a class="logout" href="/logout">out</a>
<table class="invoices"><tbody><tr><td class="number">471102</td><td class="date">05.03.2018</td>
<td class="amount">529,87</td><td><a class="pdf" href="/pdf/471102">PDF</a></td></tr></tbody>
</table></body></html>"""


def _routes():
    def pdf(request):
        if request.cookies.get("sid") != "1":
            return 403, {}, b"log in first"
        return 200, {"Content-Type": "application/pdf"}, PORTAL_PDF

    def login(request):
        return 302, {"Location": "/invoices", "Set-Cookie": "sid=1; Path=/"}, b""

    return {
        ("GET", "/login"): lambda r: (200, {"Content-Type": "text/html"}, LOGIN_PAGE),
        ("POST", "/login"): login,
        ("GET", "/invoices"): lambda r: (200, {"Content-Type": "text/html"}, LIST_PAGE),
        ("GET", "/pdf/471102"): pdf,
    }


def _gmid(daemon, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gmid", *args, "-c", str(daemon.config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def lieferant():
    """A daemon whose config names the company Lieferant by its VAT ID, and its portal."""
    with serve(_routes()) as portal:
        portals = (
            "portals:\n  - name: lieferant\n    enabled: false\n    company: Lieferant\n"
            "    username: me@example.org\n    password: pw\n"
            + DEMO_FORM.format(start=f"{portal.url}/login")
        )
        d = make_daemon_dir(extra=portals)
        d.config.write_text(
            d.config.read_text().replace(
                "companies:\n",
                "companies:\n  - name: Lieferant\n    vat_ids: [DE 123 456 789]\n",
            )
        )
        d.start()
        yield d
        code = d.stop()
        assert code == 0, d.log_text()
        assert "Traceback" not in d.log_text(), d.log_text()
        shutil.rmtree(d.dir, ignore_errors=True)


def _mail_facturx(daemon, answer: str = "1 new document(s) for Lieferant") -> None:
    raw = invoice_mail(
        sender="noreply@lieferant.example",  # no company claims this sender
        subject="Ihre Rechnung 471102",
        pdfs=[("471102.pdf", FACTURX)],
    )
    code, text = daemon.send(raw, sender="noreply@lieferant.example")
    assert code == 250 and answer in text, text


def _show(daemon, doc_id: int) -> dict:
    return daemon.call(lambda c: c.call("documents.show", id=doc_id))


def test_a_mailed_factur_x_is_named_by_its_date_and_number_and_found(lieferant):
    _mail_facturx(lieferant)
    [doc] = lieferant.documents().documents
    assert doc.path == NAME  # the company from the VAT ID, the date and number from the XML
    assert (lieferant.archive / NAME).read_bytes() == FACTURX
    shown = _show(lieferant, doc.id)
    assert shown["path"] == str(lieferant.archive / NAME)
    assert shown["fields"]["number"] == {"value": "471102", "from": "einvoice"}
    assert shown["fields"]["amount"] == {"value": "529.87", "from": "einvoice"}
    assert shown["fields"]["company"]["from"] == "einvoice"
    assert shown["check"] == {"ok": True, "problems": []}
    # found by a word of its text and by its number, through the CLI and the socket
    assert NAME in _gmid(lieferant, "documents", "--search", "joghurt")
    assert NAME in _gmid(lieferant, "documents", "--search", "471102")
    assert lieferant.documents(search="529,87").total == 1
    assert "no documents match" in _gmid(lieferant, "documents", "--search", "Waschmaschine")
    with pytest.raises(ControlError, match=r"no document 2") as missing:
        _show(lieferant, doc.id + 1)
    assert missing.value.code == NOT_FOUND
    for wrong in ("1", 0):
        with pytest.raises(ControlError, match=r"id must be a whole number") as refused:
            _show(lieferant, wrong)
        assert refused.value.code == INVALID_PARAMS


def test_the_portals_pdf_and_the_mailed_factur_x_are_one_document(lieferant):
    out = subprocess.run(
        [sys.executable, "-m", "gmid", "fetch", "lieferant", "--wait", "-c", lieferant.config],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert "1 new document" in out.stdout + out.stderr, out.stdout + out.stderr
    _mail_facturx(lieferant, "already archived")  # as the portal's invoice
    page = lieferant.documents()
    assert page.total == 1
    [doc] = page.documents
    shown = _show(lieferant, doc.id)
    assert [s["source"] for s in shown["sources"]] == ["portal", "smtp"]
    assert shown["fields"]["seller_vat_id"] == {"value": "DE123456789", "from": "einvoice"}
    assert shown["fields"]["date"]["from"] == "einvoice"
    assert doc.path == NAME
    assert (lieferant.archive / NAME).read_bytes() == PORTAL_PDF  # kept once: the first file
    assert shown["xml_path"] == str(lieferant.archive / NAME.replace(".pdf", ".xml"))
    files = sorted(str(p.relative_to(lieferant.archive)) for p in lieferant.archived_files())
    assert files == [NAME, NAME.replace(".pdf", ".xml")]
    assert "OK: the index matches the folder" in _gmid(lieferant, "verify")  # the XML too


def test_the_portals_pdf_after_the_mailed_xml_becomes_its_file_the_xml_beside(lieferant):
    cii = (CORPUS / "CII" / "EN16931_Einfach.cii.xml").read_bytes()
    code, text = lieferant.send(_with_xml(cii), sender="noreply@lieferant.example")
    assert code == 250, text
    [xml] = lieferant.documents().documents
    assert xml.path == NAME.replace(".pdf", ".xml")
    out = _gmid(lieferant, "fetch", "lieferant", "--wait")
    assert "1 new document" not in out, out  # no document of its own
    page = lieferant.documents()
    assert page.total == 1
    [doc] = page.documents
    assert doc.id == xml.id and doc.path == NAME  # the invoice as printed, to open
    assert (lieferant.archive / NAME).read_bytes() == PORTAL_PDF
    shown = _show(lieferant, doc.id)
    assert shown["xml_path"] == str(lieferant.archive / NAME.replace(".pdf", ".xml"))
    assert [s["source"] for s in shown["sources"]] == ["smtp", "portal"]
    assert shown["fields"]["number"] == {"value": "471102", "from": "einvoice"}
    assert shown["fields"]["seller"] == {"value": "Lieferant GmbH", "from": "einvoice"}
    files = sorted(str(p.relative_to(lieferant.archive)) for p in lieferant.archived_files())
    assert files == [NAME, NAME.replace(".pdf", ".xml")]
    assert "OK: the index matches the folder" in _gmid(lieferant, "verify")


def _with_xml(xml: bytes) -> bytes:
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage(policy=SMTP)
    msg["From"] = "noreply@lieferant.example"
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = "E-Rechnung 471102"
    msg["Message-ID"] = "<xml-only@lieferant.example>"
    msg.set_content("Anbei die E-Rechnung.")
    msg.add_attachment(xml, maintype="application", subtype="xml", filename="471102.xml")
    return msg.as_bytes()


def test_search_as_you_type_finds_prefixes_and_takes_any_text(lieferant):
    _mail_facturx(lieferant)
    for typed in ("Liefer", "4711", "Jogh", "lieferant 4711", "529,8", "529.87"):
        assert lieferant.documents(search=typed).total == 1, typed
    assert NAME in _gmid(lieferant, "documents", "--search", "Liefer")
    for hostile in ('"', "*", "NEAR(", "a OR b", "-x", 'Liefer" OR "', "(4711)", "Liefer*"):
        page = lieferant.documents(search=hostile)  # results or none, never an error
        assert page.total in (0, 1), hostile
        out = _gmid(lieferant, "documents", f"--search={hostile}")  # exits 0
        assert (NAME in out) == (page.total == 1), out
    assert lieferant.documents(search="(4711)").total == 1  # parentheses are plain text
    assert lieferant.documents(search="Waschm").total == 0


@pytest.mark.parametrize("how", ["gmid reindex", "the daemon at start"])
def test_reindex_reads_what_was_filed_before(how: str):
    d = make_daemon_dir()
    try:
        d.start()
        code, text = d.send(
            invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", FACTURX)]),
            sender="rechnung@telekom.example",
        )
        assert code == 250, text
        assert d.stop() == 0
        # As an older gmid left it: nothing read, named by the day it came.
        db = sqlite3.connect(d.state / "index.sqlite")
        [(old,)] = db.execute("SELECT path FROM documents").fetchall()
        new = "Telekom/2024-03-15 Telekom.pdf"  # named by the day it came
        (d.archive / old).rename(d.archive / new)
        db.execute(
            "UPDATE documents SET path = ?, date = NULL, number = NULL, amount = NULL, "
            "read_version = 0, fields_from = NULL",
            (new,),
        )
        db.commit()
        db.close()
        assert not (d.archive / old).exists()
        if how == "gmid reindex":
            assert "read 1 of 1, 1 renamed" in _gmid(d, "reindex")
            assert "every document is read" in _gmid(d, "reindex")
        d.start()
        deadline = time.monotonic() + 30
        while (doc := d.documents().documents[0]).path == new and time.monotonic() < deadline:
            time.sleep(0.1)
        assert doc.path == "Telekom/2018/2018-03-05 Telekom 471102.pdf"
        assert (d.archive / doc.path).read_bytes() == FACTURX
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(d.dir, ignore_errors=True)


def test_a_receipt_without_attachment_is_filed_for_its_sender_once(lieferant):
    receipt = (
        b"From: Book Shop <shop@books.example>\r\nTo: invoices@gmid.local\r\n"
        b"Subject: Your receipt 202612\r\nMessage-ID: <receipt-202612@books.example>\r\n"
        b"Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n\r\n"
        b"Thank you for your order.\r\nTotal: 23,90 EUR\r\n"
    )
    for relayed in (b"", b"Received: from relay.example by mx.example; Thu, 3 Dec 2026\r\n"):
        code, text = lieferant.send(relayed + receipt, sender="shop@books.example")
        assert code == 250, text
    [doc] = lieferant.documents().documents  # the same receipt again is known, relayed or not
    assert doc.path == "Book Shop/2026/2026-12-03 Book Shop.eml"  # not under unknown/
    shown = _show(lieferant, doc.id)
    assert shown["fields"]["amount"] == {"value": "23.90", "from": "text"}
    assert shown["fields"]["kind"] == {"value": "receipt", "from": "text"}
    assert lieferant.documents(search="23,90").total == 1
