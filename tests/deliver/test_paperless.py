"""The paperless-ngx destination against a real paperless-ngx v3.0.5 on 127.0.0.1."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml

from gmid.config.load import load_config
from gmid.config.reader import Reader
from gmid.config.secretref import SecretRef
from gmid.deliver.base import Delivery, DeliveryFailed
from gmid.deliver.paperless import Options, Paperless, read_options
from gmid.demo.pdf import simple_pdf
from gmid.errors import Problem
from tests.conftest import ROOT, Daemon, make_daemon_dir
from tests.support import paperless as server
from tests.support.mails import invoice_mail, make_pdf
from tests.support.needs import unavailable

pytestmark = pytest.mark.timeout(120)
_serial = itertools.count(1)


@pytest.fixture(scope="session")
def paperless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[server.Paperless]:
    if missing := server.missing_programs():
        unavailable(f"paperless needs {', '.join(missing)} (scripts/test installs them)")
    if not server.installed():  # installing takes longer than a test may
        unavailable("paperless-ngx is not installed: scripts/servers/paperless.sh does it")
    instance = server.Paperless(tmp_path_factory.mktemp("paperless"))
    try:
        instance.start()
    except server.PaperlessUnavailable as e:
        instance.close()
        unavailable(f"paperless-ngx did not start: {e}")
    print(f"paperless-ngx started in {instance.started_in:.1f}s")
    yield instance
    instance.close()


def invoice(tmp_path: Path, **fields: str | None) -> Delivery:
    """A fresh PDF (its own checksum) filed as an invoice of Telekom."""
    number = fields.pop("number", None) or f"R-{time.time_ns()}-{next(_serial)}"
    data = simple_pdf(["Telekom Deutschland GmbH", f"Rechnung {number}", "Betrag 42,00 EUR"])
    name = f"2026-03-04 Telekom {number}.pdf"
    path = tmp_path / name
    path.write_bytes(data)
    values: dict[str, str | None] = {
        "company": "Telekom",
        "date": "2026-03-04",
        "number": number,
        "amount": "42.00",
        "currency": "EUR",
        "kind": "invoice",
    }
    values.update(fields)
    sha = hashlib.sha256(data).hexdigest()
    return Delivery(f"{sha}:paperless", path, name, "application/pdf", sha, values)


def destination(paperless: server.Paperless, **options) -> Paperless:
    defaults = {
        "url": paperless.url,
        "token": SecretRef("plain", paperless.token),
        "ca_bundle": paperless.ca_file,
    }
    return Paperless("paperless", Options(**{**defaults, **options}))


def soon(seconds: float = 60) -> float:
    return time.monotonic() + seconds


def test_files_the_document_with_its_metadata(paperless, tmp_path):
    item = invoice(tmp_path)
    dest = destination(paperless, document_type="Rechnung", tags=("Invoices", "gmid"))
    doc_id = dest.deliver(item, soon())
    dest.close()

    doc = paperless.api(f"/api/documents/{doc_id}/")
    assert doc["title"] == f"Telekom {item.fields['number']}"
    assert doc["created"] == "2026-03-04"
    assert doc["original_file_name"] == item.name
    assert paperless.api(f"/api/correspondents/{doc['correspondent']}/")["name"] == "Telekom"
    assert paperless.api(f"/api/document_types/{doc['document_type']}/")["name"] == "Rechnung"
    tags = {paperless.api(f"/api/tags/{tag}/")["name"] for tag in doc["tags"]}
    assert tags == {"Invoices", "gmid"}
    fields = {
        paperless.api(f"/api/custom_fields/{cf['field']}/")["name"]: cf["value"]
        for cf in doc["custom_fields"]
    }
    assert fields == {"Invoice number": item.fields["number"], "Amount": "EUR42.00"}


def test_a_second_delivery_finds_the_same_document(paperless, tmp_path):
    item = invoice(tmp_path)
    dest = destination(paperless)
    first = dest.deliver(item, soon())
    again = destination(paperless).deliver(item, soon())  # a fresh destination: after a restart
    assert again == first
    found = paperless.api(f"/api/documents/?checksum__iexact={item.sha256}")
    assert found["count"] == 1


def test_deliveries_at_once_make_one_correspondent_of_a_new_company(paperless, tmp_path):
    company = f"Neue Firma {time.time_ns()}"
    items = [invoice(tmp_path, company=company) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:  # each its own destination: nothing known yet
        ids = list(pool.map(lambda item: destination(paperless).deliver(item, soon()), items))
    assert len(set(ids)) == 3
    found = paperless.api(f"/api/correspondents/?name__iexact={quote(company)}")
    assert [c["name"] for c in found["results"]] == [company]
    docs = [paperless.api(f"/api/documents/{i}/") for i in ids]
    assert {doc["correspondent"] for doc in docs} == {found["results"][0]["id"]}


def test_a_retry_after_a_crash_follows_the_task_already_posted(paperless, tmp_path):
    # an earlier attempt posted the file and died before its task ended
    item = invoice(tmp_path)
    with item.path.open("rb") as file:
        posted = requests.post(
            f"{paperless.url}/api/documents/post_document/",
            headers={"Authorization": f"Token {paperless.token}"},
            files={"document": (item.name, file, item.media_type)},
            data={"title": "posted before the crash"},
            timeout=30,
            verify=paperless.ca_file,
        )
    assert posted.status_code == 200, posted.text
    doc_id = destination(paperless).deliver(item, soon())

    found = paperless.api(f"/api/documents/?checksum__iexact={item.sha256}")
    assert found["count"] == 1
    assert str(found["results"][0]["id"]) == doc_id


def test_a_delivery_out_of_time_is_followed_by_the_next_attempt(paperless, tmp_path):
    item = invoice(tmp_path)
    dest = destination(paperless)
    with pytest.raises(DeliveryFailed) as caught:
        dest.deliver(item, time.monotonic() + 0.3)  # posted, but not waited for to the end
    assert not caught.value.permanent
    doc_id = dest.deliver(item, soon())
    assert paperless.api(f"/api/documents/?checksum__iexact={item.sha256}")["count"] == 1
    assert paperless.api(f"/api/documents/{doc_id}/")["original_file_name"] == item.name


def test_a_document_in_paperlesss_trash_is_named_not_filed_again(paperless, tmp_path):
    item = invoice(tmp_path)
    doc_id = destination(paperless).deliver(item, soon())
    paperless.api(f"/api/documents/{doc_id}/", method="DELETE")  # into the trash
    with pytest.raises(DeliveryFailed) as caught:
        destination(paperless).deliver(item, soon())
    assert f"paperless has {item.name} in its trash (document {doc_id})" in str(caught.value)
    assert caught.value.permanent
    assert paperless.api(f"/api/documents/?checksum__iexact={item.sha256}")["count"] == 0


def test_a_document_paperless_has_where_this_user_cannot_see_it_is_recognised(paperless, tmp_path):
    item = invoice(tmp_path)
    filed = destination(paperless).deliver(item, soon())  # the superuser's, private to them
    clerk = f"clerk{time.time_ns()}"
    rights = ["add_document", "view_document", "add_correspondent", "view_correspondent"]
    rights += ["add_customfield", "view_customfield", "view_paperlesstask"]
    made = requests.post(
        f"{paperless.url}/api/users/",
        headers={"Authorization": f"Token {paperless.token}"},
        json={"username": clerk, "password": "clerk-password", "user_permissions": rights},
        timeout=30,
        verify=paperless.ca_file,
    )
    assert made.status_code == 201, made.text
    password = SecretRef("plain", "clerk-password")
    as_clerk = destination(paperless, token=None, user=clerk, password=password)
    # the clerk's look-up by checksum cannot see it; paperless's task says whose duplicate it is
    assert as_clerk.deliver(item, soon()) == filed
    seen = as_clerk.api.get("/api/documents/", {"checksum__iexact": item.sha256}, soon())
    assert seen["count"] == 0  # so it was paperless's duplicate_of that told
    assert paperless.api(f"/api/documents/?checksum__iexact={item.sha256}")["count"] == 1


def test_user_and_password_log_in_too(paperless, tmp_path):
    item = invoice(tmp_path, company="Stadtwerke Bonn")
    dest = destination(
        paperless,
        token=None,
        user=server.USER,
        password=SecretRef("plain", server.PASSWORD),
        number_field=None,
        amount_field=None,
    )
    doc = paperless.api(f"/api/documents/{dest.deliver(item, soon())}/")
    assert (
        paperless.api(f"/api/correspondents/{doc['correspondent']}/")["name"] == "Stadtwerke Bonn"
    )
    assert doc["custom_fields"] == []


def test_a_wrong_token_gets_paperlesss_words_and_never_the_token(paperless, tmp_path):
    wrong = "0123456789abcdef0123456789abcdef01234567"
    dest = destination(paperless, token=SecretRef("plain", wrong))
    with pytest.raises(DeliveryFailed) as caught:
        dest.deliver(invoice(tmp_path), soon())
    assert "Invalid token" in str(caught.value)
    assert wrong not in str(caught.value)
    assert caught.value.permanent


def test_a_wrong_password_gets_paperlesss_words(paperless, tmp_path):
    wrong = "not-the-paperless-password"
    dest = destination(paperless, token=None, user=server.USER, password=SecretRef("plain", wrong))
    with pytest.raises(DeliveryFailed) as caught:
        dest.deliver(invoice(tmp_path), soon())
    assert f"refused the login of {server.USER}" in str(caught.value)
    assert "Unable to log in with provided credentials" in str(caught.value)
    assert wrong not in str(caught.value)
    assert caught.value.permanent


def test_a_file_paperless_cannot_read_is_a_permanent_failure_with_its_reason(paperless, tmp_path):
    item = invoice(tmp_path)
    item.path.write_bytes(b"this is no PDF at all " + item.sha256.encode())
    broken = Delivery(
        item.key,
        item.path,
        item.name,
        item.media_type,
        hashlib.sha256(item.path.read_bytes()).hexdigest(),
        item.fields,
    )
    with pytest.raises(DeliveryFailed) as caught:
        destination(paperless).deliver(broken, soon())
    assert caught.value.permanent
    assert "paperless did not take" in str(caught.value)
    assert "cannot open resource" in str(caught.value)


def test_a_certificate_of_an_unknown_ca_is_refused(paperless, tmp_path):
    with pytest.raises(DeliveryFailed) as caught:
        destination(paperless, ca_bundle=None).deliver(invoice(tmp_path), soon())
    assert "TLS" in str(caught.value)
    assert "certificate verify failed" in str(caught.value)
    assert not caught.value.permanent


def test_a_server_that_is_not_there_is_a_passing_failure(tmp_path):
    dest = Paperless("paperless", Options(url="http://127.0.0.1:9", token=SecretRef("plain", "x")))
    with pytest.raises(DeliveryFailed) as caught:
        dest.deliver(invoice(tmp_path), soon(10))
    assert not caught.value.permanent
    assert "cannot be reached" in str(caught.value)
    assert "Connection refused" in str(caught.value)


# ---------------------------------------------------------------------- options


def read(tmp_path: Path, text: str) -> tuple[Options | None, list[Problem]]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    problems: list[Problem] = []
    reader = Reader(path, problems, [])
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    return read_options(reader, node, "deliver[0]"), problems


def test_options_are_read(tmp_path):
    options, problems = read(
        tmp_path,
        "url: https://paperless.example.org/\n"
        "token: {env: PAPERLESS_TOKEN}\ndocument_type: Invoice\ntags: [gmid]\n"
        "amount_field: false\ntitle: '{company} {date} {number}'\n",
    )
    assert problems == []
    assert read(tmp_path, "url: http://paperless.lan\ntoken: {env: T}\nallow_http: true\n")[1] == []
    assert read(tmp_path, "url: http://localhost:8000\ntoken: {env: T}\n")[1] == []
    assert options == Options(
        url="https://paperless.example.org",
        token=SecretRef("env", "PAPERLESS_TOKEN"),
        document_type="Invoice",
        tags=("gmid",),
        amount_field=None,
        title="{company} {date} {number}",
    )


@pytest.mark.parametrize(
    ("text", "line", "option", "message"),
    [
        ("token: {env: T}\n", 1, "deliver[0].url", "required"),
        ("url: ftp://x\ntoken: {env: T}\n", 1, "deliver[0].url", "expected an http(s) address"),
        ("url: https://x\n", 1, "deliver[0]", "give a token, or a user and a password"),
        ("url: http://paperless.lan\ntoken: {env: T}\n", 1, "deliver[0].url", "plain http"),
        ("url: https://x\nuser: me\n", 1, "deliver[0]", "a user needs a password"),
        ("url: https://x\ntoken: {env: T}\ntitle: '{nope}'\n", 3, "deliver[0].title", "{nope}"),
        ("url: https://x\ntoken: {env: T}\ntagz: [a]\n", 3, "deliver[0].tagz", "did you mean"),
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
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "type: paperless" in b]
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"docs-{i}.yaml"
        path.write_text(f"state_dir: {tmp_path}/state\n{block}")
        config = load_config(path)  # raises ConfigError, naming the line, if it drifted
        assert not config.warnings


# ---------------------------------------------------------------------- in the daemon


def send_invoice(d: Daemon, i: int, tag: str) -> bytes:
    sender = "rechnung@telekom.example"
    pdf = make_pdf(f"paperless delivery {tag} invoice {i}")
    raw = invoice_mail(sender=sender, pdfs=[(f"R{i}.pdf", pdf)], message_id=f"{tag}.{i}@telekom")
    assert d.send(raw, sender=sender)[0] == 250
    return pdf


def wait_for(what, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


@pytest.mark.timeout(300)
def test_the_daemon_files_each_document_in_paperless_once_across_kills(paperless, tmp_path):
    token = tmp_path / "paperless.token"
    token.write_text(paperless.token + "\n")
    token.chmod(0o600)
    entry = (
        f"deliver:\n  - name: paperless\n    type: paperless\n    url: {paperless.url}\n"
        f"    token: {{file: {token}}}\n    ca_bundle: {paperless.ca_file}\n"
        "    tags: [from gmid]\n    retry: 1s\n    retry_max: 2s\n"
    )
    d = make_daemon_dir(extra=entry)
    try:
        d.start()
        tag = f"k{time.time_ns()}"
        pdfs = [send_invoice(d, i, tag) for i in range(30)]
        rng = random.Random(tag)
        for _ in range(3):  # killed at random moments while delivering, and started again
            time.sleep(rng.uniform(0.5, 4))
            d.stop(signal.SIGKILL)
            d.start()
        wait_for(lambda: d.call(lambda c: c.outbox()).destinations[0].done == len(pdfs), 240)
        for pdf in pdfs:
            found = paperless.api(
                f"/api/documents/?checksum__iexact={hashlib.sha256(pdf).hexdigest()}"
            )
            assert found["count"] == 1
        doc = paperless.api(f"/api/documents/{found['results'][0]['id']}/")
        assert paperless.api(f"/api/correspondents/{doc['correspondent']}/")["name"] == "Telekom"
        assert d.stop() == 0
        assert "Traceback" not in d.log_text()
    finally:
        d.stop(signal.SIGKILL)
        shutil.rmtree(d.dir, ignore_errors=True)
