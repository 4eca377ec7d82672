"""Which mails a sync downloads, decided from headers and BODYSTRUCTURE alone."""

from __future__ import annotations

import datetime

from gmid.config.imap import Action, Rule
from gmid.mail.imap.fetch import FetchedMessage, Part
from gmid.mail.imap.sync import decide, imap_date

TYPES = ("pdf", "xml")


def part(kind: str, name: str | None = None, disposition: str | None = None, cid=False) -> Part:
    return Part(kind, name, disposition, cid, 1000, "base64")


def meta(uid: int, sender: str, subject: str, *parts: Part, structure=True) -> FetchedMessage:
    header = f"From: Billing <{sender}>\r\nSubject: {subject}\r\nMessage-ID: <m{uid}@x>\r\n\r\n"
    return FetchedMessage(
        uid=uid,
        flags=(),
        size=5000,
        internaldate=None,
        parts=tuple(parts) if structure else None,
        header=header.encode(),
        body=None,
    )


TEXT = part("text/plain")
HTML = part("text/html")
PDF = part("application/pdf", "R-1.pdf", "attachment")
LOGO = part("image/png", "logo.png", "inline", cid=True)


def test_without_rules_only_mails_that_may_carry_a_document_are_fetched() -> None:
    assert decide(meta(1, "a@x.example", "Hi", TEXT, HTML), (), TYPES, True).rule is None
    assert decide(meta(2, "a@x.example", "News", HTML, LOGO), (), TYPES, True).rule is None
    assert decide(meta(3, "a@x.example", "Invoice", TEXT, PDF), (), TYPES, True).rule is not None
    octet = part("application/octet-stream", "scan", "attachment")
    assert decide(meta(4, "a@x.example", "Scan", TEXT, octet), (), TYPES, True).rule is not None
    signed = part("application/pkcs7-signature", "smime.p7s", "attachment")
    assert decide(meta(5, "a@x.example", "Signed", TEXT, signed), (), TYPES, True).rule is None
    # images count only when the config files images, and never an inline logo
    photo = part("image/jpeg", "receipt.jpg", "attachment")
    assert decide(meta(6, "a@x.example", "R", TEXT, photo), (), TYPES, True).rule is None
    assert decide(meta(6, "a@x.example", "R", TEXT, photo), (), ("image",), True).rule
    assert decide(meta(7, "a@x.example", "N", HTML, LOGO), (), ("image",), True).rule is None
    # an unreadable structure: only the body can tell
    assert decide(meta(8, "a@x.example", "?", structure=False), (), TYPES, True).rule


def test_rules_match_sender_subject_and_attachment_names() -> None:
    telekom = Rule(
        senders=("@telekom.example",),
        subjects=("rechnung",),
        attachments=("*.pdf",),
        company="Telekom",
        then=Action("seen"),
    )
    anyone_xml = Rule(attachments=("*.xml",), exclude_attachments=("*draft*",))
    rules = (telekom, anyone_xml)
    hit = decide(meta(1, "bill@mail.telekom.example", "Ihre Rechnung", PDF), rules, TYPES, True)
    assert hit.rule is telekom and hit.message_id == "m1@x" and hit.size == 5000
    newsletter = meta(2, "bill@telekom.example", "Newsletter", PDF)
    assert decide(newsletter, rules, TYPES, True).rule is None
    assert decide(meta(3, "bill@other.example", "Rechnung", PDF), rules, TYPES, True).rule is None
    xml = part("application/xml", "x-rechnung.xml", "attachment")
    assert decide(meta(4, "a@b.example", "E-Rechnung", xml), rules, TYPES, True).rule is anyone_xml
    draft = part("application/xml", "draft-1.xml", "attachment")
    assert decide(meta(5, "a@b.example", "E-Rechnung", draft), rules, TYPES, True).rule is None


def test_a_rule_naming_a_sender_may_keep_a_mail_without_documents() -> None:
    rule = Rule(senders=("noreply@bank.example",))
    hit = decide(meta(1, "noreply@bank.example", "Kontoauszug", TEXT), (rule,), TYPES, True)
    assert hit.rule is rule
    kept = decide(meta(1, "noreply@bank.example", "Kontoauszug", TEXT), (rule,), TYPES, False)
    assert kept.rule is None


def test_search_dates_are_in_imap_form() -> None:
    assert imap_date(datetime.date(2026, 1, 5)) == "5-Jan-2026"
