"""parse_mail on good and hostile mails: what a user would notice in the archive and index."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from gmid.mail.parse import Document, eml_document, parse_mail
from tests.support import mails


def _parse_timed(raw: bytes, **kwargs):
    started = time.perf_counter()
    parsed = parse_mail(raw, **kwargs)
    return parsed, time.perf_counter() - started


# --- the builders themselves -------------------------------------------------------------------


def test_make_pdf_is_a_valid_pdf_with_correct_xref_offsets():
    pdf = mails.make_pdf("Invoice 42")
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    startxref = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref\n0 6\n")
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n ", pdf)]
    assert len(offsets) == 5
    for number, offset in enumerate(offsets, 1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)
    assert b"(Invoice 42) '" in pdf
    assert mails.make_pdf("Invoice 43") != pdf
    assert 125_000 <= len(mails.make_pdf("big", size=130_000)) <= 135_000


ALL_BUILDERS = {
    "invoice": lambda: mails.invoice_mail(sender="a@b.example"),
    "forwarded": lambda: mails.forwarded_mail(
        mails.invoice_mail(sender="a@b.example"), sender="c@d.example"
    ),
    "inline": lambda: mails.inline_forward_mail(sender="c@d.example", original_sender="a@b.ex"),
    "rfc2231": mails.rfc2231_name_mail,
    "traversal": mails.traversal_name_mail,
    "broken_base64": mails.broken_base64_mail,
    "nested": mails.nested_multipart_mail,
    "big_header": mails.big_header_mail,
    "malformed": mails.malformed_mime_mail,
    "no_attachment": mails.no_attachment_mail,
    "xml": mails.xml_einvoice_mail,
    "logo": mails.inline_logo_mail,
}


@pytest.mark.parametrize("name", ALL_BUILDERS)
def test_builders_make_mails_fit_for_smtp(name):
    raw = ALL_BUILDERS[name]()
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")
    assert not any(b"\n" in line or b"\r" in line for line in lines), "bare CR or LF"
    assert max(map(len, lines)) <= 998


# --- ordinary invoice mails ---------------------------------------------------------------------


def test_invoice_pdfs_come_out_byte_identical_with_headers():
    first, second = mails.make_pdf("January", size=20_000), mails.make_pdf("February")
    raw = mails.invoice_mail(
        sender="Billing Dept <Billing@Supplier.Example>",
        subject="Ihre Rechnung März",
        pdfs=[("jan.pdf", first), ("feb.pdf", second)],
        message_id="inv-1@supplier.example",
    )
    parsed = parse_mail(raw)
    assert [d.data for d in parsed.documents] == [first, second]
    assert parsed.documents[0] == Document(first, "pdf", "application/pdf", ".pdf", "jan.pdf")
    assert parsed.message_id == "inv-1@supplier.example"
    assert parsed.subject == "Ihre Rechnung März"
    assert parsed.date == datetime(2024, 3, 15, 9, 30, tzinfo=UTC)
    assert parsed.senders == ("billing@supplier.example",)
    assert parsed.problems == ()


def test_octet_stream_pdfs_are_found_by_their_content():
    pdf = mails.make_pdf("octet")
    raw = mails.invoice_mail(
        sender="a@b.example",
        pdfs=[("rechnung.pdf", pdf), ("download", pdf + b" ")],
        octet_stream=True,
    )
    docs = parse_mail(raw).documents
    assert [(d.kind, d.media_type, d.ext, d.original_name) for d in docs] == [
        ("pdf", "application/pdf", ".pdf", "rechnung.pdf"),
        ("pdf", "application/pdf", ".pdf", "download"),
    ]
    assert docs[0].data == pdf


def test_declared_pdf_that_is_not_a_pdf_is_a_problem_not_a_document():
    raw = mails.invoice_mail(
        sender="a@b.example", pdfs=[("rechnung.pdf", b"<html>Session expired</html>")]
    )
    parsed = parse_mail(raw)
    assert parsed.documents == ()
    assert parsed.problems == ('part 2 ("rechnung.pdf"): declared PDF but content is not a PDF',)


def test_the_extension_comes_from_the_content_never_from_the_name():
    pdf = mails.make_pdf("disguised")
    raw = mails.invoice_mail(sender="a@b.example", pdfs=[("photo.jpg", pdf)], octet_stream=True)
    (doc,) = parse_mail(raw, types=("pdf", "image")).documents
    assert (doc.kind, doc.ext, doc.original_name) == ("pdf", ".pdf", "photo.jpg")


def test_identical_documents_are_returned_once():
    pdf = mails.make_pdf("same")
    raw = mails.invoice_mail(sender="a@b.example", pdfs=[("a.pdf", pdf), ("b.pdf", pdf)])
    assert [d.original_name for d in parse_mail(raw).documents] == ["a.pdf"]


def test_mail_without_attachment_has_no_documents_and_can_be_kept_as_eml():
    raw = mails.no_attachment_mail(subject="Kein Anhang")
    parsed = parse_mail(raw)
    assert parsed.documents == () and parsed.problems == ()
    doc = eml_document(raw)
    assert (doc.data, doc.kind, doc.media_type, doc.ext) == (raw, "eml", "message/rfc822", ".eml")
    assert doc.original_name == "Kein Anhang"
    assert eml_document(b"no headers at all").original_name is None


# --- forwarded mails: who is the supplier? ------------------------------------------------------


def test_attached_forward_puts_the_original_sender_first():
    original = mails.invoice_mail(sender="Billing <billing@supplier.example>")
    once = mails.forwarded_mail(original, sender="Accountant <acct@office.example>")
    twice = mails.forwarded_mail(once, sender="me@home.example")
    parsed = parse_mail(twice)
    assert parsed.senders == ("billing@supplier.example", "acct@office.example", "me@home.example")
    assert [d.data for d in parsed.documents] == [mails.make_pdf()]
    assert parsed.subject == "Fwd: invoice"


@pytest.mark.parametrize("style", ["gmail", "thunderbird", "apple", "outlook"])
@pytest.mark.parametrize("html", [False, True])
def test_inline_forward_puts_the_original_sender_first(style, html):
    raw = mails.inline_forward_mail(
        sender="Me <me@home.example>",
        original_sender="Billing@Supplier.example",
        style=style,
        html=html,
    )
    parsed = parse_mail(raw)
    assert parsed.senders == ("billing@supplier.example", "me@home.example")
    assert len(parsed.documents) == 1


def test_reply_to_and_sender_come_after_from_without_duplicates():
    raw = mails.no_attachment_mail(sender="shop@supplier.example").replace(
        b"\r\nTo:",
        b"\r\nReply-To: Support <SUPPORT@supplier.example>, shop@supplier.example"
        b"\r\nSender: bounce@mailer.example\r\nTo:",
    )
    assert parse_mail(raw).senders == (
        "shop@supplier.example",
        "support@supplier.example",
        "bounce@mailer.example",
    )


# --- names ---------------------------------------------------------------------------------------


def test_rfc2231_and_encoded_word_names_are_decoded():
    parsed = parse_mail(mails.rfc2231_name_mail())
    assert [d.original_name for d in parsed.documents] == [mails.RFC2231_NAME] * 2
    assert parsed.subject == "Rechnung März"
    # and as the stdlib writes them
    raw = mails.invoice_mail(sender="a@b.example", pdfs=[(mails.RFC2231_NAME, mails.make_pdf())])
    assert parse_mail(raw).documents[0].original_name == mails.RFC2231_NAME


def test_hostile_names_are_kept_for_the_index_but_never_decide_the_extension():
    parsed = parse_mail(mails.traversal_name_mail())
    expected = [n.replace("\x00", "").replace("\r\n", "") for n in mails.TRAVERSAL_NAMES]
    assert [d.original_name for d in parsed.documents] == expected
    assert {d.ext for d in parsed.documents} == {".pdf"}
    assert all(d.data.startswith(b"%PDF-") for d in parsed.documents)


# --- broken and hostile mails --------------------------------------------------------------------


def test_broken_base64_is_a_problem_and_gives_no_corrupt_document():
    parsed = parse_mail(mails.broken_base64_mail(where="start"))
    assert [d.data for d in parsed.documents] == [mails.make_pdf("intact")]
    assert parsed.problems == ('part 2 ("rechnung.pdf"): broken base64',)


def test_broken_base64_that_still_reads_as_the_declared_pdf_is_kept_with_a_problem():
    parsed = parse_mail(mails.broken_base64_mail(where="middle"))
    assert [d.original_name for d in parsed.documents] == ["rechnung.pdf", "intact.pdf"]
    assert parsed.problems == (
        'part 2 ("rechnung.pdf"): broken base64 (kept: still reads as a PDF)',
    )


@pytest.mark.parametrize("pdf_at", ["bottom", "top"])
def test_a_thousand_nested_multiparts_return_fast_without_raising(pdf_at):
    parsed, elapsed = _parse_timed(mails.nested_multipart_mail(1000, pdf_at=pdf_at))
    assert elapsed < 2  # a hang guard: it takes milliseconds
    assert parsed.problems == ("nesting deeper than 50 levels: deeper parts skipped",)
    assert len(parsed.documents) == (1 if pdf_at == "top" else 0)


def test_nesting_up_to_max_depth_is_read():
    assert len(parse_mail(mails.nested_multipart_mail(50)).documents) == 1
    assert parse_mail(mails.nested_multipart_mail(51)).documents == ()
    shallow = parse_mail(mails.nested_multipart_mail(10), max_depth=5)
    assert shallow.problems == ("nesting deeper than 5 levels: deeper parts skipped",)


def test_deeply_nested_forwarded_messages_stop_at_max_depth():
    raw = mails.invoice_mail(sender="deep@supplier.example")
    for i in range(300):
        raw = b"From: hop%d@relay.example\r\nContent-Type: message/rfc822\r\n\r\n%s" % (i, raw)
    parsed, elapsed = _parse_timed(raw)
    assert elapsed < 2
    assert parsed.senders[-1] == "hop299@relay.example"
    assert parsed.problems == ("nesting deeper than 50 levels: deeper parts skipped",)


@pytest.mark.parametrize("header", ["Subject", "Content-Disposition"])
def test_a_one_megabyte_header_is_read(header):
    raw = mails.big_header_mail(1_000_000, header=header)
    parsed, elapsed = _parse_timed(raw)
    assert elapsed < 2
    assert [d.original_name for d in parsed.documents] == ["big.pdf"]
    if header == "Subject":
        assert parsed.subject.startswith("RechnungMärz 2024März 2024")


def test_malformed_mime_gives_problems_and_the_readable_pdfs():
    parsed = parse_mail(mails.malformed_mime_mail())
    assert [d.data for d in parsed.documents] == [
        mails.make_pdf("bad params"),
        mails.make_pdf("unclosed"),
    ]
    assert "message: multipart not closed (missing closing boundary)" in parsed.problems
    assert "part 2: multipart without boundary: its parts were skipped" in parsed.problems


HOSTILE = {
    "empty": b"",
    "no header end": b"Subject: x",
    "nul bytes": b"From: a@b.example\r\nSubject: a\x00b\r\n\r\n\x00\x00\x00",
    "8-bit headers": "From: Jörg <jörg@bücher.example>\r\nSubject: März\r\n\r\nx".encode("latin-1"),
    "unknown charsets": b"Subject: =?x-klingon?q?R=E4?= =?utf-8?b?!!?=\r\n"
    b"Content-Type: application/pdf; name*=x-klingon''M%E4rz.pdf\r\n\r\n%PDF-1.4",
    "broken quoted-printable": b"Content-Type: application/pdf\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n%PDF-1.4 =ZZ =\r\n= =",
    "garbage": bytes(range(256)) * 1000,
    "boundary without parts": b'Content-Type: multipart/mixed; boundary="x"\r\n\r\nno parts',
    "quadratic params": b"Content-Type: application/pdf; " + b'name="a;' * 100_000 + b"\r\n\r\n",
    "unclosed html tags": b"Content-Type: text/html\r\n\r\n" + b"<" * 500_000,
    "many forward markers": b"\r\n\r\n" + b"-----Original Message-----\r\nFrom: x\r\n" * 50_000,
    "many parts": b"Content-Type: multipart/mixed; boundary=q\r\n\r\n"
    + b"--q\r\n\r\nx\r\n" * 20_000,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_never_raises_nor_hangs(name):
    parsed, elapsed = _parse_timed(HOSTILE[name])
    assert elapsed < 2
    assert isinstance(parsed.subject, str)


def test_8bit_headers_and_unknown_charsets_are_decoded_lossily():
    parsed = parse_mail(HOSTILE["8-bit headers"])
    assert (parsed.subject, parsed.senders) == ("März", ("jörg@bücher.example",))
    parsed = parse_mail(HOSTILE["unknown charsets"])
    assert parsed.subject.startswith("R")
    assert parsed.documents[0].original_name == "März.pdf"


def test_truncated_mails_never_raise():
    raw = mails.forwarded_mail(mails.rfc2231_name_mail(), sender="me@home.example")
    for cut in range(0, len(raw), 37):
        parse_mail(raw[:cut])


# --- XML e-invoices and images -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/xml", "application/octet-stream"]
)
def test_xml_einvoice_is_found_only_when_xml_is_wanted(content_type):
    raw = mails.xml_einvoice_mail(content_type=content_type)
    (doc,) = parse_mail(raw).documents
    assert doc == Document(mails.EINVOICE_XML, "xml", "application/xml", ".xml", "xrechnung.xml")
    assert parse_mail(raw, types=("pdf",)).documents == ()


def test_inline_logos_are_not_documents_but_attached_images_are():
    parsed = parse_mail(mails.inline_logo_mail(scan=True), types=("pdf", "xml", "image"))
    assert [(d.kind, d.original_name) for d in parsed.documents] == [
        ("pdf", "invoice.pdf"),
        ("image", "receipt.png"),
    ]
    assert parsed.documents[1].media_type == "image/png"
    assert [d.kind for d in parse_mail(mails.inline_logo_mail(scan=True)).documents] == ["pdf"]


# --- header lines that are no header fields ----------------------------------------------------


@pytest.mark.parametrize("bad", mails.BAD_HEADER_LINES)
def test_a_bad_header_line_does_not_hide_the_pdf_and_is_a_problem(bad):
    pdf = mails.make_pdf("below a bad header line")
    raw = mails.bad_header_line_mail(mails.BAD_HEADER_LINES[bad], pdf=pdf)
    parsed = parse_mail(raw)
    assert [(d.kind, d.data) for d in parsed.documents] == [("pdf", pdf)]
    assert parsed.subject == "Your invoice"
    [problem] = parsed.problems
    assert "no header field" in problem
    assert problem.isprintable()  # the NUL is shown as \x00, for the log and the reason file


def test_a_mail_without_blank_line_after_its_headers_keeps_its_body():
    raw = b"From: a@example.com\r\nSubject: hi\r\nDear customer,\r\nsee you\r\n"
    parsed = parse_mail(raw)
    assert parsed.subject == "hi" and parsed.problems == ()
