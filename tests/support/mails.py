"""Builders of test mails, good and hostile, as the raw bytes an SMTP client would send.

Every mail has CRLF line endings and lines of at most 998 bytes, so it can go over real SMTP.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

from gmid.demo.pdf import simple_pdf

SMTP_POLICY = policy.default.clone(linesep="\r\n")
DATE = datetime(2024, 3, 15, 9, 30, tzinfo=UTC)


def make_pdf(text: str = "Invoice 1", size: int | None = None) -> bytes:
    """A valid one-page PDF showing text; size pads it with a stream to about that many bytes."""
    # The filler is seeded by the text so that different texts give different bytes.
    filler = random.Random(text).randbytes(max(size - 700, 0)) if size else b""
    return simple_pdf([text], filler=filler)


def _message(sender: str, to: str, subject: str, message_id: str | None) -> EmailMessage:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(DATE)
    msg["Message-ID"] = f"<{message_id}>" if message_id else make_msgid(domain="gmid.test")
    return msg


def invoice_mail(
    *,
    sender: str,
    to: str = "invoices@gmid.local",
    subject: str = "Your invoice",
    pdfs: list[tuple[str, bytes]] | None = None,
    message_id: str | None = None,
    octet_stream: bool = False,
    body: str = "Dear customer,\n\nplease find your invoice attached.\n",
) -> bytes:
    """A plain invoice mail with PDF attachments (declared application/pdf or octet-stream)."""
    msg = _message(sender, to, subject, message_id)
    msg.set_content(body)
    for name, data in [("invoice.pdf", make_pdf())] if pdfs is None else pdfs:
        subtype = "octet-stream" if octet_stream else "pdf"
        msg.add_attachment(data, maintype="application", subtype=subtype, filename=name)
    return msg.as_bytes()


def forwarded_mail(
    inner: bytes, *, sender: str, to: str = "invoices@gmid.local", subject: str = "Fwd: invoice"
) -> bytes:
    """A mail that forwards inner as an attached message/rfc822 part."""
    msg = _message(sender, to, subject, None)
    msg.set_content("Forwarding this one.\n")
    msg.add_attachment(BytesParser(policy=SMTP_POLICY).parsebytes(inner))
    return msg.as_bytes()


_INLINE_STYLES = {
    "gmail": "---------- Forwarded message ---------\nFrom: Billing <{0}>\nDate: {1}\n",
    "thunderbird": "-------- Original Message --------\nSubject: Invoice\nFrom: {0}\n",
    "apple": "Begin forwarded message:\n\nFrom: Billing <{0}>\nSubject: Invoice\n",
    "outlook": "-----Ursprüngliche Nachricht-----\nVon: Billing [mailto:{0}]\nGesendet: {1}\n",
}


def inline_forward_mail(
    *,
    sender: str,
    original_sender: str,
    to: str = "invoices@gmid.local",
    style: str = "gmail",
    html: bool = False,
    pdfs: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """A mail forwarded inline: the original's From appears in the body after a marker."""
    quoted = _INLINE_STYLES[style].format(original_sender, "Fri, 15 Mar 2024 09:00")
    text = f"FYI, see below.\n\n{quoted}\nDear customer, your invoice is attached.\n"
    msg = _message(sender, to, "Fwd: Invoice", None)
    if html:
        escaped = text.replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>\n")
        msg.set_content(f"<html><body><div>{escaped}</div></body></html>", subtype="html")
    else:
        msg.set_content(text)
    for name, data in [("invoice.pdf", make_pdf("inline"))] if pdfs is None else pdfs:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes()


def _raw(headers: list[str], *parts: bytes, boundary: str = "b0", close: bool = True) -> bytes:
    """A multipart mail written by hand, for what EmailMessage refuses to produce."""
    head = [*headers, "MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{boundary}"']
    out = ["\r\n".join(head).encode() + b"\r\n\r\nThis is a MIME message.\r\n"]
    out += [b"--%s\r\n%s\r\n" % (boundary.encode(), part) for part in parts]
    if close:
        out.append(b"--%s--\r\n" % boundary.encode())
    return b"".join(out)


def _envelope(sender: str, subject: str) -> list[str]:
    return [
        f"From: {sender}",
        "To: invoices@gmid.local",
        f"Subject: {subject}",
        "Date: Fri, 15 Mar 2024 09:30:00 +0000",
        f"Message-ID: {make_msgid(domain='gmid.test')}",
    ]


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _part(headers: list[str], body: bytes) -> bytes:
    return "\r\n".join(headers).encode("utf-8") + b"\r\n\r\n" + body


def _pdf_part(params: str, data: bytes, disposition: str = "attachment") -> bytes:
    headers = [
        "Content-Type: application/pdf",
        f"Content-Disposition: {disposition}; {params}",
        "Content-Transfer-Encoding: base64",
    ]
    return _part(headers, _b64(data))


def _text_part(text: str = "Your invoice is attached.") -> bytes:
    return _part(["Content-Type: text/plain; charset=utf-8"], text.encode())


RFC2231_NAME = "Rechnung März €.pdf"


def rfc2231_name_mail(*, sender: str = "billing@supplier.example") -> bytes:
    """Two PDFs named "Rechnung März €.pdf": one with RFC 2231, one with RFC 2047 encoded-words."""
    return _raw(
        _envelope(sender, "=?utf-8?q?Rechnung_M=C3=A4rz?="),
        _text_part(),
        _pdf_part("filename*=utf-8''Rechnung%20M%C3%A4rz%20%E2%82%AC.pdf", make_pdf("2231")),
        _pdf_part('filename="=?utf-8?b?UmVjaG51bmcgTcOkcnog4oKsLnBkZg==?="', make_pdf("2047")),
    )


TRAVERSAL_NAMES = [
    "../../../etc/passwd.pdf",
    "/abs/x.pdf",
    "..\\..\\win.pdf",
    "con.pdf",
    "n" * 296 + ".pdf",
    "nul\x00byte.pdf",
    "new\r\nline.pdf",
]


def traversal_name_mail(*, sender: str = "evil@attacker.example") -> bytes:
    """PDFs whose names try to escape the archive; sent as RFC 2231 (long ones continued)."""
    parts = [_text_part()]
    for i, name in enumerate(TRAVERSAL_NAMES):
        encoded = quote(name, safe="")
        chunks = [encoded[j : j + 200] for j in range(0, len(encoded), 200)]
        # RFC 2231 continuations: the charset goes on the first piece only
        pieces = [f"filename*{k}*={chunk}" for k, chunk in enumerate(chunks)]
        params = ";\r\n ".join(pieces).replace("*0*=", "*0*=utf-8''", 1)
        parts.append(_pdf_part(params, make_pdf(f"traversal {i}")))
    return _raw(_envelope(sender, "Invoices"), *parts)


def broken_base64_mail(*, sender: str = "billing@supplier.example", where: str = "start") -> bytes:
    """A PDF whose base64 is corrupted (at the start: unreadable; in the middle: still a PDF),
    beside an intact PDF."""
    lines = _b64(make_pdf("broken")).split(b"\r\n")
    if where == "start":
        lines[0] = b"!!!!" + lines[0][4:]  # drops "%PD": the rest no longer reads as a PDF
    else:
        lines[len(lines) // 2] = b"**" + lines[len(lines) // 2][:-2]
    broken = _part(
        [
            "Content-Type: application/pdf",
            'Content-Disposition: attachment; filename="rechnung.pdf"',
            "Content-Transfer-Encoding: base64",
        ],
        b"\r\n".join(lines),
    )
    return _raw(
        _envelope(sender, "Broken"),
        _text_part(),
        broken,
        _pdf_part('filename="intact.pdf"', make_pdf("intact")),
    )


def nested_multipart_mail(
    depth: int = 1000, *, pdf_at: str = "bottom", sender: str = "billing@supplier.example"
) -> bytes:
    """Multiparts nested depth levels deep, with a PDF at the bottom or at the top."""
    pdf = _pdf_part('filename="deep.pdf"', make_pdf(f"depth {depth}"))
    inner = pdf if pdf_at == "bottom" else _text_part("bottom")
    for level in reversed(range(1, depth)):
        inner = _part(
            [f'Content-Type: multipart/mixed; boundary="n{level}"'],
            b"--n%d\r\n%s\r\n--n%d--" % (level, inner, level),
        )
    top = [pdf] if pdf_at == "top" else []
    return _raw(_envelope(sender, "Deep"), *top, inner, boundary="n0")


def big_header_mail(
    size: int = 1_000_000, *, header: str = "Subject", sender: str = "billing@supplier.example"
) -> bytes:
    """A mail with one header of about size bytes, folded over many lines, and a PDF."""
    count = size // 30
    if header == "Content-Disposition":
        pad = ";\r\n ".join(["x-pad=abcdefghijklmnop"] * count)
        big = _pdf_part(f'filename="big.pdf";\r\n {pad}', make_pdf("big"))
        return _raw(_envelope(sender, "Big"), _text_part(), big)
    fold = "\r\n ".join(["=?utf-8?q?Rechnung?="] + ["=?utf-8?q?M=C3=A4rz_2024?="] * count)
    headers = [h for h in _envelope(sender, "x") if not h.startswith(header + ":")]
    return _raw(
        [*headers, f"{header}: {fold}"],
        _text_part(),
        _pdf_part('filename="big.pdf"', make_pdf("big")),
    )


def malformed_mime_mail(*, sender: str = "billing@supplier.example") -> bytes:
    """Broken MIME: bad Content-Type parameters, a multipart without boundary, no closing line."""
    no_boundary = _part(["Content-Type: multipart/alternative"], b"--x\r\nlost\r\n--x--")
    bad_params = _part(
        [
            "Content-Type: application/pdf; name=\"unterminated; ;;=; =x; charset*=''%",
            "Content-Transfer-Encoding: base64",
        ],
        _b64(make_pdf("bad params")),
    )
    last = _pdf_part('filename="last.pdf"', make_pdf("unclosed"))
    return _raw(
        _envelope(sender, "Malformed"), _text_part(), no_boundary, bad_params, last, close=False
    )


def no_attachment_mail(
    *, sender: str = "newsletter@supplier.example", subject: str = "No invoice this month"
) -> bytes:
    """A text-only mail: nothing to collect."""
    msg = _message(sender, "invoices@gmid.local", subject, None)
    msg.set_content("Nothing attached.\n")
    return msg.as_bytes()


EINVOICE_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:'
    b'CrossIndustryInvoice:100">\n  <rsm:ExchangedDocument><ram:ID xmlns:ram="urn:x">'
    b"RE-2024-001</ram:ID></rsm:ExchangedDocument>\n</rsm:CrossIndustryInvoice>\n"
)


def xml_einvoice_mail(
    *, sender: str = "billing@supplier.example", content_type: str = "application/xml"
) -> bytes:
    """An XRechnung/ZUGFeRD-style XML invoice attached without a PDF."""
    msg = _message(sender, "invoices@gmid.local", "E-Rechnung RE-2024-001", None)
    msg.set_content("<p>Ihre E-Rechnung</p>", subtype="html")
    maintype, subtype = content_type.split("/")
    msg.add_attachment(EINVOICE_XML, maintype=maintype, subtype=subtype, filename="xrechnung.xml")
    return msg.as_bytes()


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def inline_logo_mail(
    *, sender: str = "billing@supplier.example", scan: bool = False, pdf: bool = True
) -> bytes:
    """An HTML mail with an inline logo (Content-ID) and a PDF; scan=True adds a real image."""
    msg = _message(sender, "invoices@gmid.local", "Your invoice", None)
    msg.set_content("Your invoice is attached.\n")
    msg.add_alternative(
        '<html><body><img src="cid:logo@gmid"> Your invoice</body></html>', subtype="html"
    )
    html = msg.get_payload()[1]
    html.add_related(
        PNG,
        maintype="image",
        subtype="png",
        cid="<logo@gmid>",
        filename="logo.png",
        disposition="inline",
    )
    if pdf:
        msg.add_attachment(
            make_pdf("with logo"), maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    if scan:
        msg.add_attachment(PNG + b"scan", maintype="image", subtype="png", filename="receipt.png")
    return msg.as_bytes()


BAD_HEADER_LINES = {
    "nul-in-name": b"X-Mailer\x00Tag: scanner 2.1",
    "no-colon": b"this line has no colon",
}


def bad_header_line_mail(
    line: bytes, *, sender: str = "billing@supplier.example", pdf: bytes | None = None
) -> bytes:
    """An invoice mail with a line that is no header field above its Content-Type."""
    raw = invoice_mail(sender=sender, pdfs=[("invoice.pdf", pdf or make_pdf("bad header"))])
    return raw.replace(b"\r\nSubject:", b"\r\n" + line + b"\r\nSubject:", 1)
