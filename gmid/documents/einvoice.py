"""Read an e-invoice exactly: Factur-X / ZUGFeRD PDFs, XRechnung and EN 16931 CII or UBL XML.

read_einvoice(data, media_type_or_name) gives an EInvoice, or None when the data is no
e-invoice (an XML of another kind, a PDF without an invoice attachment, a PDF pypdf cannot
read). An invoice that fails a check is still read: its problems are listed in
EInvoice.problems (schema, sums, missing fields; an XML that is not well-formed or declares a
DTD is refused with a problem and no fields).

In a PDF the invoice is the attachment with one of the names the standards give it
(factur-x.xml, zugferd-invoice.xml / ZUGFeRD-invoice.xml, xrechnung.xml), not the first one:
a PDF may carry a delivery note or a time sheet beside it. facturx.get_xml_from_pdf takes the
first attachment that matches its patterns ("*.xml" unless told; xrechnung.xml is not among
its Factur-X names) and parses it with lxml's default parser, so the attachment is picked here
from pypdf's list, by name.

Bounded: the input is capped (MAX_PDF_BYTES, MAX_XML_BYTES); XML is parsed without network,
entity expansion, DTD loading or libxml2's huge-tree mode.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from lxml import etree
from pypdf import PdfReader

from gmid.documents import checks, syntax
from gmid.documents.model import EInvoice

log = logging.getLogger(__name__)

MAX_PDF_BYTES = 32 * 1024 * 1024
MAX_XML_BYTES = 16 * 1024 * 1024  # room for attachments embedded in the XML (XRechnung)

# Attachment names, most specific first (compared case-insensitively).
INVOICE_ATTACHMENTS = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")

# What an invoice's root element is named in, to tell a broken invoice from a broken other XML.
_INVOICE_NAMESPACES = (
    syntax.NS["rsm"].encode(),
    syntax.NS["inv"].encode(),
    syntax.NS["cn"].encode(),
)
_DTD_REFUSED = "refused: the XML declares a DTD (entities); e-invoices have none"
_ZUGFERD_1 = "urn:ferd:CrossIndustryDocument:invoice:1p0"


def read_einvoice(
    data: bytes, media_type_or_name: str = "", *, check_schema: bool = True
) -> EInvoice | None:
    """The e-invoice in data (a PDF or an XML file), or None if it holds none.

    media_type_or_name ("application/pdf", "text/xml", "R-123.xml", ...) is a hint: a PDF is
    known by its header whatever it is called.
    """
    kind = _kind(data, media_type_or_name)
    if kind == "pdf":
        return _read_pdf(data, check_schema)
    if kind == "xml":
        return read_xml(data, "xml", check_schema=check_schema)
    return None


def _kind(data: bytes, hint: str) -> str | None:
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    hint = hint.lower()
    if hint.endswith("pdf"):  # application/pdf, x.pdf
        return "pdf"
    if hint.endswith("xml") or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "xml"
    return None


def _read_pdf(data: bytes, check_schema: bool) -> EInvoice | None:
    if len(data) > MAX_PDF_BYTES:
        log.info(
            "PDF of %d bytes not searched for an e-invoice (over %d)", len(data), MAX_PDF_BYTES
        )
        return None
    try:
        found = invoice_attachment(data)
    except Exception as err:  # pypdf raises many kinds on a broken or hostile PDF
        log.info("PDF not readable for an e-invoice: %s: %s", type(err).__name__, err)
        return None
    if found is None:
        return None
    name, attachment = found
    try:
        xml = attachment.content
    except Exception as err:
        return EInvoice(
            syntax="CII", source=name, problems=(f"attachment {name} not readable: {err}",)
        )
    return read_xml(xml, name, check_schema=check_schema, named_invoice=True)


def invoice_attachment(pdf: bytes) -> tuple[str, Any] | None:
    """(name, pypdf EmbeddedFile) of the invoice among the PDF's attachments, by name."""
    reader = PdfReader(io.BytesIO(pdf), strict=False)
    by_name = {}
    for attachment in reader.attachment_list:
        by_name.setdefault(attachment.name.rsplit("/", 1)[-1].lower(), attachment)
    for wanted in INVOICE_ATTACHMENTS:
        if wanted in by_name:
            return by_name[wanted].name, by_name[wanted]
    return None


def _parser() -> etree.XMLParser:
    # One a call: an lxml parser is not to be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def read_xml(
    data: bytes, source: str = "xml", *, check_schema: bool = True, named_invoice: bool = False
) -> EInvoice | None:
    """The e-invoice in a CII or UBL XML document, or None if it is XML of another kind.

    named_invoice: the XML came as an invoice (a PDF's factur-x.xml), so if it cannot be read
    that is a problem of an invoice, not another kind of document.
    """
    looks_like = named_invoice or any(ns in data for ns in _INVOICE_NAMESPACES)
    guess = "UBL" if syntax.NS["rsm"].encode() not in data and looks_like else "CII"
    if len(data) > MAX_XML_BYTES:
        refused = f"refused: the XML is {len(data)} bytes, over the {MAX_XML_BYTES} bytes read"
        return EInvoice(syntax=guess, source=source, problems=(refused,)) if looks_like else None
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as err:
        # libxml2 stops an entity bomb itself, even unexpanded; say why it is refused
        problem = _DTD_REFUSED if b"<!DOCTYPE" in data else f"not well-formed XML: {err}"
        return EInvoice(syntax=guess, source=source, problems=(problem,)) if looks_like else None
    return _read_root(root, source, check_schema, named_invoice)


def _read_root(root: Any, source: str, check_schema: bool, named_invoice: bool) -> EInvoice | None:
    if root.tag == syntax.CII_ROOT:
        name, read = "CII", syntax.read_cii
    elif root.tag in (syntax.UBL_INVOICE_ROOT, syntax.UBL_CREDIT_NOTE_ROOT):
        name, read = "UBL", syntax.read_ubl
    elif named_invoice or _ZUGFERD_1 in str(root.tag):
        root_name = etree.QName(root).localname
        return EInvoice(
            syntax="CII", source=source, problems=(f"not read: root element {root_name!r}",)
        )
    else:
        return None
    if root.getroottree().docinfo.internalDTD is not None:
        return EInvoice(syntax=name, source=source, problems=(_DTD_REFUSED,))
    fields, problems = read(root)
    invoice = EInvoice(syntax=name, source=source, **fields)
    if check_schema:
        problems = checks.schema_problems(root, name) + problems
    problems += checks.sum_problems(invoice) + checks.missing_problems(invoice)
    return EInvoice(syntax=name, source=source, problems=tuple(problems), **fields)
