"""Filing what documents say: their own names, one invoice however it came, the XML beside,
the company from the seller, renames that survive a crash, and reindex. On real files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gmid.archive import merging, rename
from gmid.archive.archive import Archive, Incoming
from gmid.archive.index import Index
from gmid.archive.reindex import reindex
from tests.support.mails import make_pdf

CORPUS = Path(__file__).parent.parent / "documents" / "corpus"
FACTURX = (CORPUS / "FX" / "EN16931_Einfach.pdf").read_bytes()  # 471102, 2018-03-05, 529.87
CII = (CORPUS / "CII" / "EN16931_Einfach.cii.xml").read_bytes()  # the same invoice as XML
TEMPLATE = "{company}/{date:%Y}/{date:%Y-%m-%d} {company} {number}{ext}"
RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Company:
    name: str
    vat_ids: tuple[str, ...] = ()
    ibans: tuple[str, ...] = ()


@pytest.fixture
def index(tmp_path):
    idx = Index(tmp_path / "state" / "index.sqlite")
    yield idx
    idx.close()


@pytest.fixture
def archive(tmp_path, index):
    return Archive(
        tmp_path / "archive",
        TEMPLATE,
        index,
        UTC,
        quarantine_dir=tmp_path / "state" / "quarantine",
    )


def incoming(data: bytes, **fields) -> Incoming:
    values = {
        "media_type": "application/pdf",
        "ext": ".pdf",
        "source": "smtp",
        "source_name": "smtp",
        "company": "Lieferant",
        "received_at": RECEIVED,
        "message_id": "<m1@example>",
    }
    return Incoming(data=data, **(values | fields))


def files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and ".gmid-tmp" not in p.parts
    )


def test_a_factur_x_is_named_by_its_own_date_and_number(archive, index):
    stored = archive.store(incoming(FACTURX))
    assert stored.document.path == "Lieferant/2018/2018-03-05 Lieferant 471102.pdf"
    details = index.details(stored.document.id)
    assert details["fields"]["number"] == {"value": "471102", "from": "einvoice"}
    assert details["fields"]["amount"] == {"value": "529.87", "from": "einvoice"}
    assert details["fields"]["seller_vat_id"]["value"] == "DE123456789"
    assert details["check"] == {"ok": True, "problems": []}
    assert stored.document.kind == "invoice" and stored.document.read_version > 0
    assert index.count(search="Joghurt") == 1  # a line's name is searchable


def test_the_portal_pdf_and_the_mailed_factur_x_are_one_document(archive, index, tmp_path):
    portal_pdf = make_pdf("Ihre Rechnung")  # its text says no number: the list's is used
    first = archive.store(
        incoming(
            portal_pdf,
            source="portal",
            source_name="lieferant-portal",
            source_ref="doc-9",
            message_id=None,
            number="471 102",  # the portal's list spells it its own way
            date=date(2018, 3, 5),
            amount="529.87",
        )
    )
    assert first.created and first.document.path.endswith("2018-03-05 Lieferant 471 102.pdf")
    second = archive.store(incoming(FACTURX))
    assert not second.created and second.document.id == first.document.id
    assert index.count() == 1
    details = index.details(first.document.id)
    assert [s["source_name"] for s in details["sources"]] == ["lieferant-portal", "smtp"]
    assert details["fields"]["number"] == {"value": "471102", "from": "einvoice"}
    assert details["fields"]["seller"]["value"] == "Lieferant GmbH"
    # renamed once to the invoice's own number, and the e-invoice kept beside the portal's PDF
    assert files(archive.root) == [
        "Lieferant/2018/2018-03-05 Lieferant 471102.pdf",
        "Lieferant/2018/2018-03-05 Lieferant 471102.xml",
    ]
    assert details["xml_path"] == "Lieferant/2018/2018-03-05 Lieferant 471102.xml"
    assert (archive.root / details["document"]["path"]).read_bytes() == portal_pdf
    # the mailed Factur-X again: known by its bytes, nothing more
    again = archive.store(incoming(FACTURX))
    assert not again.created and index.count() == 1
    assert len(index.details(first.document.id)["sources"]) == 2


def test_the_factur_x_first_and_the_portal_second_keep_the_e_invoice_fields(archive, index):
    first = archive.store(incoming(FACTURX))
    second = archive.store(
        incoming(
            make_pdf("portal copy"),
            source="portal",
            source_name="lieferant-portal",
            source_ref="doc-9",
            message_id=None,
            number="471102",
            date=date(2018, 3, 5),
            amount="529.87",
        )
    )
    assert second.document.id == first.document.id and index.count() == 1
    details = index.details(first.document.id)
    assert details["fields"]["number"]["from"] == "einvoice"
    assert details["document"]["path"] == first.document.path
    assert len(details["sources"]) == 2


def test_a_different_amount_is_another_invoice(archive, index):
    archive.store(incoming(FACTURX))
    other = archive.store(
        incoming(
            make_pdf("other"),
            source="portal",
            source_name="p",
            number="471102",
            date=date(2018, 3, 5),
            amount="529.88",
        )
    )
    assert other.created and index.count() == 2


def test_the_xml_that_came_with_a_pdf_is_kept_beside_it(archive, index):
    pdf = make_pdf("Rechnung")
    stored = archive.store_many(
        [
            incoming(pdf, original_name="rechnung.pdf"),
            incoming(CII, media_type="application/xml", ext=".xml", original_name="x.xml"),
        ]
    )
    assert stored[0].created and not stored[1].created
    assert stored[1].document.id == stored[0].document.id
    assert index.count() == 1
    doc = index.get(stored[0].document.id)
    assert doc.path == "Lieferant/2018/2018-03-05 Lieferant 471102.pdf"
    assert doc.xml_path == "Lieferant/2018/2018-03-05 Lieferant 471102.xml"
    assert (archive.root / doc.xml_path).read_bytes() == CII
    assert index.details(doc.id)["fields"]["amount"] == {"value": "529.87", "from": "einvoice"}
    assert len(index.details(doc.id)["sources"]) == 2


def test_the_company_comes_from_the_sellers_vat_id_or_name(archive, index):
    archive.companies = [Company("Lieferant & Co", vat_ids=("DE 123 456 789",))]
    by_vat = archive.store(incoming(FACTURX, company="unknown"))
    assert by_vat.document.company == "Lieferant & Co"
    assert index.details(by_vat.document.id)["fields"]["company"]["from"] == "einvoice"
    miete = (CORPUS / "CII" / "EN16931_Miete.cii.xml").read_bytes()
    by_name = archive.store(incoming(miete, company="unknown", media_type="text/xml", ext=".xml"))
    assert by_name.document.company == "MUSTER-Autovermietung"  # a new company, not "unknown"
    assert by_name.document.path.startswith("MUSTER-Autovermietung/2018/2018-10-01 ")
    elektron = (CORPUS / "CII" / "EN16931_Elektron.cii.xml").read_bytes()
    archive.companies = [Company("Elektron", ibans=("DE91 1000 0000 0123 4567 89",))]
    by_iban = archive.store(
        incoming(elektron, company="unknown", media_type="text/xml", ext=".xml")
    )
    assert by_iban.document.company == "Elektron"


def test_reindex_reads_documents_filed_before_and_renames_them_once(tmp_path, index):
    unread = Archive(tmp_path / "archive", TEMPLATE, index, UTC, quarantine_dir=tmp_path / "q")
    unread.read_documents = False  # as filed before gmid read documents
    old = unread.store(incoming(FACTURX, company="unknown")).document
    assert old.path == "unknown/2026/2026-11-24 unknown.pdf" and old.read_version == 0
    archive = Archive(tmp_path / "archive", TEMPLATE, index, UTC, quarantine_dir=tmp_path / "q")
    seen = []
    progress = reindex(archive, progress=lambda p: seen.append((p.done, p.total)))
    assert seen == [(1, 1)] and progress.renamed == 1
    doc = index.get(old.id)
    assert doc.path == "Lieferant GmbH/2018/2018-03-05 Lieferant GmbH 471102.pdf"
    assert files(archive.root) == [doc.path]
    assert index.unread_count(doc.read_version) == 0
    assert reindex(archive).done == 0  # resumable: nothing is read twice


@pytest.mark.parametrize("crash_at", ["noted", "linked", "indexed"])
def test_a_rename_interrupted_anywhere_is_finished_or_undone(tmp_path, index, crash_at):
    unread = Archive(tmp_path / "archive", TEMPLATE, index, UTC, quarantine_dir=tmp_path / "q")
    unread.read_documents = False
    old = unread.store(incoming(FACTURX)).document

    class Crash(Exception):
        pass

    def hit(name):
        if name == f"rename-{crash_at}":
            raise Crash

    archive = Archive(tmp_path / "archive", TEMPLATE, index, UTC, quarantine_dir=tmp_path / "q")
    real = rename.failpoints.hit
    rename.failpoints.hit = hit
    try:
        with pytest.raises(Crash):
            reindex(archive)
    finally:
        rename.failpoints.hit = real
    archive.recover()
    doc = index.get(old.id)
    assert files(archive.root) == [doc.path]  # one file, under the name the index knows
    assert (archive.root / doc.path).read_bytes() == FACTURX
    assert index.query("SELECT count(*) FROM renames") == [(0,)]
    os.sync()


def test_a_pdf_after_its_xml_only_invoice_becomes_its_file_the_xml_beside(archive, index):
    xml = archive.store(incoming(CII, media_type="application/xml", ext=".xml")).document
    printed = make_pdf("Rechnung Nr. 471102 vom 05.03.2018 Lieferant GmbH Gesamtbetrag 529,87 EUR")
    pdf = archive.store(incoming(printed, message_id="<m2@example>", original_name="r.pdf"))
    assert not pdf.created and pdf.document.id == xml.id and index.count() == 1
    doc = index.get(xml.id)
    assert doc.path == "Lieferant/2018/2018-03-05 Lieferant 471102.pdf"
    assert doc.xml_path == "Lieferant/2018/2018-03-05 Lieferant 471102.xml"
    assert doc.media_type == "application/pdf" and doc.size == len(printed)
    assert (archive.root / doc.path).read_bytes() == printed
    assert (archive.root / doc.xml_path).read_bytes() == CII
    assert files(archive.root) == [doc.path, doc.xml_path]
    details = index.details(xml.id)
    assert details["fields"]["number"] == {"value": "471102", "from": "einvoice"}
    assert details["fields"]["amount"] == {"value": "529.87", "from": "einvoice"}
    assert [s["message_id"] for s in details["sources"]] == ["<m1@example>", "<m2@example>"]
    # either again: known by its bytes, nothing more
    assert not archive.store(incoming(CII, media_type="application/xml", ext=".xml")).created
    assert not archive.store(incoming(printed, message_id="<m2@example>")).created
    assert files(archive.root) == [doc.path, doc.xml_path] and index.count() == 1
    assert index.count(search="r.pdf") == 1  # the PDF's name is searched


def test_a_factur_x_after_its_xml_only_invoice_takes_its_place(archive, index):
    xml = archive.store(incoming(CII, media_type="application/xml", ext=".xml")).document
    archive.store(incoming(FACTURX, message_id="<m2@example>"))
    doc = index.get(xml.id)
    assert (doc.path, doc.xml_path) == (
        "Lieferant/2018/2018-03-05 Lieferant 471102.pdf",
        "Lieferant/2018/2018-03-05 Lieferant 471102.xml",
    )
    assert index.count() == 1 and len(index.details(xml.id)["sources"]) == 2


@pytest.mark.parametrize("crash_at", ["noted", "linked", "indexed"])
def test_a_swap_interrupted_anywhere_leaves_the_xml_or_the_pdf_with_it(archive, index, crash_at):
    xml = archive.store(incoming(CII, media_type="application/xml", ext=".xml")).document

    class Crash(Exception):
        pass

    def hit(name):
        if name == f"swap-{crash_at}":
            raise Crash

    real = merging.failpoints.hit
    merging.failpoints.hit = hit
    try:
        with pytest.raises(Crash):
            archive.store(incoming(FACTURX, message_id="<m2@example>"))
    finally:
        merging.failpoints.hit = real
    archive.recover()
    doc = index.get(xml.id)
    assert index.query("SELECT count(*) FROM renames") == [(0,)]
    if crash_at == "indexed":  # the row was committed: the PDF is the document's file
        assert files(archive.root) == [doc.path, doc.xml_path] and doc.path.endswith(".pdf")
    else:  # undone: as before, and the PDF sent again is filed then
        assert files(archive.root) == [doc.path] and doc.path.endswith(".xml")
        archive.store(incoming(FACTURX, message_id="<m2@example>"))
        doc = index.get(xml.id)
        assert files(archive.root) == [doc.path, doc.xml_path] and doc.path.endswith(".pdf")
    assert (archive.root / doc.path).read_bytes() == FACTURX and index.count() == 1


def test_two_descriptions_of_one_portal_file_its_invoice_once(archive, index):
    listed = {"number": "2026-0042", "date": date(2026, 3, 4), "amount": "84.20"}
    first = archive.store(
        incoming(make_pdf("Ihre Rechnung"), source="portal", source_name="telekom-web",
                 source_ref="a1", message_id=None, company="Telekom", **listed)
    )  # fmt: skip
    second = archive.store(  # the same invoice, drawn again (other bytes) for the other list
        incoming(make_pdf("Ihre Rechnung (Kopie)"), source="portal", source_name="telekom-api",
                 source_ref="9f", message_id=None, company="Telekom", **listed)
    )  # fmt: skip
    assert second.document.id == first.document.id and not second.created
    assert files(archive.root) == ["Telekom/2026/2026-03-04 Telekom 2026-0042.pdf"]
    sources = index.details(first.document.id)["sources"]
    assert [(s["source_name"], s["ref"]) for s in sources] == [
        ("telekom-web", "a1"),
        ("telekom-api", "9f"),
    ]
