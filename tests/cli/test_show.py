"""`gmid show` as a user types it, against a real daemon: the fields, the sources and the path of a
document, and its e-invoice rendered as text and as an HTML page."""

from __future__ import annotations

import json
import shutil
import signal
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import lxml.html
import pytest

from gmid.control import protocol as p
from gmid.errors import ControlError
from tests.cli.test_cli import gmid
from tests.conftest import make_daemon_dir
from tests.support.mails import invoice_mail, make_pdf

CORPUS = Path(__file__).parents[1] / "documents" / "corpus"


def _xml_mail(name: str, data: bytes) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "billing@supplier.example"
    msg["To"] = "invoices@gmid.local"
    msg["Subject"] = "Credit note"
    msg.set_content("Your credit note as UBL.\n")
    msg.add_attachment(data, maintype="application", subtype="xml", filename=name)
    return msg.as_bytes()


@pytest.fixture(scope="module")
def filed():
    """One daemon for the module, that filed a Factur-X PDF (Telekom), a UBL credit note and a
    PDF without e-invoice (Stadtwerke); the documents by the name they came under."""
    pdf = (CORPUS / "FX" / "XRECHNUNG_Einfach.pdf").read_bytes()
    credit_note = (CORPUS / "UBL" / "ubl-tc434-creditnote1.xml").read_bytes()
    mails = [
        invoice_mail(sender="rechnung@telekom.example", pdfs=[("Rechnung.pdf", pdf)]),
        _xml_mail("credit-note.xml", credit_note),
        invoice_mail(sender="info@stadtwerke.example", pdfs=[("plain.pdf", make_pdf("plain"))]),
    ]
    daemon = make_daemon_dir().start()
    try:
        for raw in mails:
            code, text = daemon.send(raw)
            assert code == 250, text
        listing = gmid("documents", "--json", "-c", str(daemon.config))
        assert listing.returncode == 0, listing.stderr
        docs = json.loads(listing.stdout)
        assert len(docs) == 3
        yield daemon, {d["original_name"]: d for d in docs}
    finally:
        code = daemon.stop(signal.SIGTERM)
        log = daemon.log_text()
        shutil.rmtree(daemon.dir, ignore_errors=True)
    assert code == 0 and "Traceback" not in log, log


def _show(daemon, *args: str):
    return gmid("show", *args, "-c", str(daemon.config))


def test_show_prints_the_fields_the_sources_and_the_path(filed):
    daemon, docs = filed
    doc = docs["Rechnung.pdf"]
    result = _show(daemon, str(doc["id"]))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"document {doc['id']}: {doc['path']}\n")
    rows = {line.split("  ")[0]: " ".join(line.split()) for line in out.splitlines()}
    assert rows["FIELD"] == "FIELD VALUE FROM"
    assert rows["number"] == "number 471102 the e-invoice XML"
    assert rows["date"] == "date 2018-03-05 the e-invoice XML"
    assert rows["company"] == "company Telekom the mail"
    assert rows["seller"] == "seller Lieferant GmbH the e-invoice XML"
    assert rows["gross total"] == "gross total 529.87 the e-invoice XML"
    assert rows["IBAN"] == "IBAN DE02120300000000202051 the e-invoice XML"
    assert "check: the e-invoice passed every check" in out
    assert "sources (1):" in out and "as 'Rechnung.pdf'" in out and "smtp" in out
    assert f"path           {daemon.archive / doc['path']}\n" in out
    assert f"sha256 {doc['sha256']}" in out
    as_json = json.loads(_show(daemon, str(doc["id"]), "--json").stdout)
    assert as_json["path"] == str(daemon.archive / doc["path"])
    assert as_json["document"]["id"] == doc["id"] and as_json["sources"]


def test_show_text_renders_the_factur_x_invoice(filed):
    daemon, docs = filed
    result = _show(daemon, str(docs["Rechnung.pdf"]["id"]), "--text", "--width", "72")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("Invoice 471102\n")
    assert "Lieferant GmbH" in text and "Trennblätter A4" in text and "Joghurt Banane" in text
    assert "529.87 EUR" in text and "DE02 1203 0000 0000 2020 51" in text
    assert max(len(line) for line in text.splitlines()) <= 72


def test_show_html_writes_a_page_of_an_xml_only_invoice(filed, tmp_path):
    daemon, docs = filed
    target = tmp_path / "credit-note.html"
    result = _show(daemon, str(docs["credit-note.xml"]["id"]), "--html", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {target}: open it in a browser\n"
    page = lxml.html.document_fromstring(target.read_text())
    assert page.findtext(".//h1") == "Credit note 018304 / 28865"
    seen = page.text_content()
    assert "My Supplier Company" in seen and "Exonération du versement du PP" in seen
    assert "100.11 EUR" in seen
    printed = _show(daemon, str(docs["credit-note.xml"]["id"]), "--html")
    assert printed.stdout == target.read_text()


def test_a_document_without_an_e_invoice_says_so(filed):
    daemon, docs = filed
    result = _show(daemon, str(docs["plain.pdf"]["id"]), "--html")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"gmid: document {docs['plain.pdf']['id']} has no e-invoice XML\n"


def test_show_of_an_unknown_document_is_one_clear_line(filed):
    daemon, _ = filed
    result = _show(daemon, "4711")
    assert result.returncode == 1
    assert result.stderr == "gmid: no document 4711\n"
    result = _show(daemon, "4711", "--text")
    assert result.stderr == "gmid: no document 4711\n"
    result = _show(daemon, "1", "-o", "x.html")
    assert result.returncode == 1 and "give --html or --text" in result.stderr


def test_documents_lists_the_id_number_and_amount_show_takes(filed):
    daemon, docs = filed
    table = gmid("documents", "-c", str(daemon.config)).stdout.splitlines()
    assert table[0].split()[:5] == ["ID", "DATE", "NUMBER", "AMOUNT", "COMPANY"]
    doc = docs["Rechnung.pdf"]
    [row] = [line for line in table if line.endswith(doc["path"])]
    assert row.split()[:6] == [str(doc["id"]), "2018-03-05", "471102", "529.87", "EUR", "Telekom"]


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"id": 1, "format": "pdf"}, "format must be one of html, text"),
        ({"id": 1, "width": 10}, "width must be a whole number 40..1000"),
        ({"id": "1"}, "id must be a whole number"),
        ({"id": 1, "path": "/etc/passwd"}, "unknown parameter path"),
    ],
)
def test_documents_render_refuses_what_it_does_not_take(filed, params, said):
    daemon, _ = filed
    with pytest.raises(ControlError) as refused:
        daemon.call(lambda c: c.call("documents.render", **params))
    assert refused.value.code == p.INVALID_PARAMS
    assert said in str(refused.value)
