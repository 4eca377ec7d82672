"""The e-mail destination against a real submission server: Postfix with STARTTLS and Dovecot
SASL on 127.0.0.1 (tests/support/submission.py), the mail read back from its mailbox."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gmid.config.load import load_config
from gmid.config.reader import Reader
from gmid.config.secretref import SecretRef
from gmid.deliver.base import Delivery, DeliveryFailed
from gmid.deliver.email import Email, Options, message_id, read_options
from gmid.demo.pdf import simple_pdf
from gmid.errors import Problem
from tests.conftest import ROOT, make_daemon_dir
from tests.support import submission
from tests.support.mails import invoice_mail, make_pdf
from tests.support.needs import unavailable

pytestmark = pytest.mark.timeout(60)
USER, PASSWORD = "me@example.org", "submission-secret"


@pytest.fixture(scope="module")
def server() -> Iterator[submission.Submission]:
    if (why := submission.usable()) is not None:
        unavailable(why)
    instance = submission.Submission({USER: PASSWORD}).start()
    yield instance
    instance.stop()


def invoice(tmp_path: Path, number: str = "4711") -> Delivery:
    data = simple_pdf(["Telekom Deutschland GmbH", f"Rechnung {number}", str(time.time_ns())])
    name = f"2026-03-04 Telekom {number}.pdf"
    (tmp_path / name).write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    fields = {
        "company": "Telekom",
        "date": "2026-03-04",
        "number": number,
        "amount": "42.00",
        "currency": "EUR",
        "kind": "invoice",
    }
    return Delivery(f"{sha}:datev", tmp_path / name, name, "application/pdf", sha, fields)


def destination(server: submission.Submission, **options) -> Email:
    values = {
        "host": submission.HOST,
        "port": server.port,
        "user": USER,
        "password": SecretRef("plain", PASSWORD),
        "sender": USER,
        "to": submission.INBOX,
        "ca_bundle": server.ca_file,
    }
    return Email("datev", Options(**{**values, **options}))


def soon() -> float:
    return time.monotonic() + 30


def test_one_mail_with_the_document_attached(server, tmp_path):
    before = len(server.mails())
    item = invoice(tmp_path)
    reference = destination(server).deliver(item, soon())

    mail = server.wait_mail(reference)
    assert mail["Subject"] == "Telekom 4711 2026-03-04"
    assert mail["To"] == submission.INBOX
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == item.name
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == item.path.read_bytes()
    assert "invoice 4711" in mail.get_body(("plain",)).get_content()
    time.sleep(0.3)
    assert len(server.mails()) == before + 1  # once
    assert [m["Message-ID"] for m in server.mails()].count(reference) == 1


def test_the_message_id_is_the_same_for_the_same_document_and_destination(server, tmp_path):
    item = invoice(tmp_path, "0815")
    first = destination(server).deliver(item, soon())
    assert destination(server).deliver(item, soon()) == first
    other = dataclasses.replace(item, key=item.key.replace(":datev", ":lexoffice"))
    assert destination(server).deliver(other, soon()) != first


def test_tls_from_the_first_byte(server, tmp_path):
    reference = destination(server, port=server.tls_port, security="tls").deliver(
        invoice(tmp_path, "465"), soon()
    )
    assert server.wait_mail(reference)["To"] == submission.INBOX


def test_a_wrong_password_names_the_servers_refusal(server, tmp_path):
    before = len(server.mails())
    dest = destination(server, password=SecretRef("plain", "not-the-password"))
    with pytest.raises(DeliveryFailed) as caught:
        dest.deliver(invoice(tmp_path), soon())
    message = str(caught.value)
    assert f"refused the login of {USER}" in message
    assert "535" in message and "authentication failed" in message
    assert "not-the-password" not in message
    assert caught.value.permanent
    assert len(server.mails()) == before


def test_an_address_the_server_refuses_is_a_permanent_failure_with_its_words(server, tmp_path):
    dest = destination(server, to="nobody@accounting.test")
    with pytest.raises(DeliveryFailed) as caught:
        dest.deliver(invoice(tmp_path), soon())
    assert "refused nobody@accounting.test: 550" in str(caught.value)
    assert "User unknown" in str(caught.value)
    assert caught.value.permanent


def test_a_server_without_starttls_is_refused_before_the_password(server, tmp_path):
    before = server.log_text().count("sasl_username")
    with pytest.raises(DeliveryFailed) as caught:
        destination(server, port=server.plain_port).deliver(invoice(tmp_path), soon())
    assert "offers no STARTTLS" in str(caught.value)
    assert caught.value.permanent
    assert server.log_text().count("sasl_username") == before


def test_a_certificate_of_an_unknown_ca_is_refused(server, tmp_path):
    with pytest.raises(DeliveryFailed) as caught:
        destination(server, ca_bundle=None).deliver(invoice(tmp_path), soon())
    assert "certificate" in str(caught.value)
    assert not caught.value.permanent


# ---------------------------------------------------------------------- options


def read(tmp_path: Path, text: str) -> tuple[Options | None, list[Problem]]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    problems: list[Problem] = []
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return read_options(Reader(path, problems, []), node, "deliver[1]"), problems


def test_options_are_read(tmp_path):
    options, problems = read(
        tmp_path,
        "host: smtp.example.org\nuser: me@example.org\n"
        "password: {command: pass show smtp}\nfrom: me@example.org\n"
        "to: belege-1234@uploadmail.datev.de\nsubject: 'Beleg {number}'\n",
    )
    assert problems == []
    assert options == Options(
        host="smtp.example.org",
        user="me@example.org",
        password=SecretRef("command", "pass show smtp"),
        sender="me@example.org",
        to="belege-1234@uploadmail.datev.de",
        subject="Beleg {number}",
    )


@pytest.mark.parametrize(
    ("text", "line", "option", "message"),
    [
        ("host: h\nuser: u\npassword: {env: P}\nfrom: a@b.c\n", 1, "deliver[1].to", "required"),
        (
            "host: h\nuser: u\npassword: {env: P}\nfrom: a@b.c\nto: nope\n",
            5,
            "deliver[1].to",
            "is not user@domain",
        ),
        ("host: h\nuser: u\nfrom: a@b.c\nto: a@b.c\n", 1, "deliver[1].password", "required"),
        (
            "host: h\nuser: u\npassword: {env: P}\nfrom: a@b.c\nto: a@b.c\nsecurity: plain\n",
            6,
            "deliver[1].security",
            "expected starttls or tls",
        ),
        (
            "host: h\nuser: u\npassword: {env: P}\nfrom: a@b.c\nto: a@b.c\nsubject: '{x}'\n",
            6,
            "deliver[1].subject",
            "unknown field {x}",
        ),
    ],
)
def test_option_problems_name_file_line_and_option(tmp_path, text, line, option, message):
    _, problems = read(tmp_path, text)
    assert problems, text
    assert problems[0].file == str(tmp_path / "config.yaml")
    assert (problems[0].line, problems[0].option) == (line, option)
    assert message in problems[0].message


def test_the_example_in_the_docs_is_read_without_problems(tmp_path):
    text = (ROOT / "docs" / "delivery.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "type: email" in b]
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"docs-{i}.yaml"
        path.write_text(f"state_dir: {tmp_path}/state\n{block}")
        config = load_config(path)  # raises ConfigError, naming the line, if it drifted
        assert not config.warnings


def test_the_daemon_mails_each_filed_document_to_the_inbox(server, tmp_path):
    secret = tmp_path / "smtp.password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    entry = (
        f"deliver:\n  - name: datev\n    type: email\n    host: {submission.HOST}\n"
        f"    port: {server.port}\n    user: {USER}\n    password: {{file: {secret}}}\n"
        f"    from: {USER}\n    to: {submission.INBOX}\n    ca_bundle: {server.ca_file}\n"
        "    retry: 1s\n"
    )
    d = make_daemon_dir(extra=entry)
    try:
        d.start()
        sender = "rechnung@telekom.example"
        pdfs = {}
        for i in range(2):
            pdf = make_pdf(f"mailed on to the inbox {i} {time.time_ns()}")
            raw = invoice_mail(sender=sender, pdfs=[(f"R{i}.pdf", pdf)], message_id=f"m{i}@t")
            assert d.send(raw, sender=sender)[0] == 250
            pdfs[hashlib.sha256(pdf).hexdigest()] = pdf
        deadline = time.monotonic() + 30
        while d.call(lambda c: c.outbox()).destinations[0].done < len(pdfs):
            assert time.monotonic() < deadline, d.log_text()[-2000:]
            time.sleep(0.2)
        mails = [server.wait_mail(message_id(_delivery(sha), USER)) for sha in pdfs]
        for mail, pdf in zip(mails, pdfs.values(), strict=True):
            (attachment,) = list(mail.iter_attachments())
            assert attachment.get_content() == pdf
            assert attachment.get_filename().endswith(".pdf")
            assert mail["Subject"].startswith("Telekom")
        assert d.stop() == 0
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(d.dir, ignore_errors=True)


def _delivery(sha: str) -> Delivery:
    """The delivery of a document with this checksum to the destination datev (for its key)."""
    return Delivery(f"{sha}:datev", Path("unused"), "unused", "application/pdf", sha, {})
