"""Mail that reaches gmid through other mail software: what it changes, gmid still sees."""

from __future__ import annotations

from tests.support.mails import invoice_mail, make_pdf


def _relayed(raw: bytes, *headers: str) -> bytes:
    """The mail as a fetching client hands it on: the trace headers of its delivery on top."""
    return "".join(f"{h}\r\n" for h in headers).encode() + raw


def test_a_plus_tag_lost_in_the_envelope_is_taken_from_the_delivery_headers(daemon):
    """fetchmail's `smtpname` hands every mail to invoices@: the tag the supplier was given
    (me+telekom@provider) survives in Delivered-To / X-Original-To, and picks the company."""
    mail = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", make_pdf("fetched 1"))])
    raw = _relayed(mail, "Delivered-To: me+Stadtwerke@provider.example")
    assert daemon.send(raw, rcpt="invoices@gmid.local")[0] == 250
    mail = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", make_pdf("fetched 2"))])
    raw = _relayed(mail, "X-Original-To: me+ACME@provider.example")
    assert daemon.send(raw, rcpt="invoices@gmid.local")[0] == 250
    companies = sorted(d.company for d in daemon.documents().documents)
    assert companies == ["ACME", "Stadtwerke"]


def test_the_envelope_tag_wins_over_the_delivery_headers(daemon):
    mail = invoice_mail(sender="billing@shop.example", pdfs=[("r.pdf", make_pdf("both"))])
    raw = _relayed(mail, "Delivered-To: me+ACME@provider.example")
    assert daemon.send(raw, rcpt="invoices+telekom@gmid.local")[0] == 250
    [doc] = daemon.documents().documents
    assert doc.company == "Telekom"


def test_only_the_last_delivery_counts(daemon):
    """Delivered-To lines further down are older hops (or the sender's own words)."""
    mail = invoice_mail(sender="rechnung@telekom.example", pdfs=[("r.pdf", make_pdf("hops"))])
    raw = _relayed(
        mail, "Delivered-To: me@provider.example", "Delivered-To: me+Forged@provider.example"
    )
    assert daemon.send(raw, rcpt="invoices@gmid.local")[0] == 250
    [doc] = daemon.documents().documents
    assert doc.company == "Telekom"  # by its sender, as without any tag
