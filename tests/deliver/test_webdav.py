"""The WebDAV destination against a real WebDAV server (wsgidav) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmid.config.secretref import SecretRef
from gmid.deliver.base import DeliveryFailed
from gmid.deliver.webdav import Options, WebDavDestination
from tests.deliver.support import delivery, soon
from tests.support.portal_http import serve as http_serve
from tests.support.webdav import serve

NAME = "Telekom/2026/2026-03-04 Telekom 4711.pdf"


def webdav(url: str, **options) -> WebDavDestination:
    return WebDavDestination("cloud", Options(url=url, **options))


@pytest.fixture
def dav(tmp_path: Path):
    with serve(tmp_path / "dav", user="gmid", password="dav-secret") as server:
        yield server


def login(**more):
    return {"username": "gmid", "password": SecretRef("env", "GMID_TEST_DAV"), **more}


@pytest.fixture(autouse=True)
def password(monkeypatch):
    monkeypatch.setenv("GMID_TEST_DAV", "dav-secret")


def test_a_document_is_put_under_its_template_name_with_its_folders(dav, tmp_path: Path):
    item = delivery(tmp_path / "archive")
    dest = webdav(dav.url + "Rechnungen/", **login())
    (dav.root / "Rechnungen").mkdir()
    reference = dest.deliver(item, soon())
    assert reference == dav.url + "Rechnungen/Telekom/2026/2026-03-04%20Telekom%204711.pdf"
    assert dav.files() == {f"Rechnungen/{NAME}": item.path.read_bytes()}


def test_a_second_delivery_of_the_same_document_makes_no_copy(dav, tmp_path: Path):
    item = delivery(tmp_path / "archive")
    dest = webdav(dav.url, **login())
    first = dest.deliver(item, soon())
    again = delivery(tmp_path / "archive", attempt=2)
    assert dest.deliver(again, soon()) == first
    # A first attempt that finds its name taken looks too (the document queued twice).
    assert dest.deliver(item, soon()) == first
    assert dav.files() == {NAME: item.path.read_bytes()}


def test_another_file_at_the_name_is_never_replaced(dav, tmp_path: Path):
    (dav.root / "Telekom" / "2026").mkdir(parents=True)
    (dav.root / NAME).write_bytes(b"somebody else's file")
    item = delivery(tmp_path / "archive")
    reference = webdav(dav.url, **login()).deliver(item, soon())
    assert reference.endswith("2026-03-04%20Telekom%204711%20%282%29.pdf")
    assert dav.files() == {
        NAME: b"somebody else's file",
        NAME.replace(".pdf", " (2).pdf"): item.path.read_bytes(),
    }


def test_an_upload_cut_short_is_completed_on_the_retry(dav, tmp_path: Path):
    item = delivery(tmp_path / "archive", data=b"%PDF-1.4 " + b"x" * 5000 + b"\n%%EOF\n")
    (dav.root / "Telekom" / "2026").mkdir(parents=True)
    (dav.root / NAME).write_bytes(item.path.read_bytes()[:1000])  # what a crash left
    retry = delivery(tmp_path / "archive", data=item.path.read_bytes(), attempt=2)
    webdav(dav.url, **login()).deliver(retry, soon())
    assert dav.files() == {NAME: item.path.read_bytes()}


def test_a_wrong_password_is_a_failure_that_says_so_without_the_password(
    dav, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("GMID_TEST_DAV", "wrong-password-123")
    with pytest.raises(DeliveryFailed) as failed:
        webdav(dav.url, **login()).deliver(delivery(tmp_path / "archive"), soon())
    assert "401" in str(failed.value)
    assert "username and password" in str(failed.value)
    assert "wrong-password-123" not in str(failed.value)
    assert dav.files() == {}


def test_digest_authentication(dav, tmp_path: Path):
    item = delivery(tmp_path / "archive")
    webdav(dav.url, **login(auth="digest")).deliver(item, soon())
    assert dav.files() == {NAME: item.path.read_bytes()}


def test_a_server_that_is_down_is_a_failure_to_retry(dav, tmp_path: Path):
    dav.stop()
    with pytest.raises(DeliveryFailed, match=r"cannot reach 127\.0\.0\.1") as failed:
        webdav(dav.url, **login()).deliver(delivery(tmp_path / "archive"), soon())
    assert not failed.value.permanent


def created(request):
    return 201, {}, b""


def test_a_certificate_nobody_vouches_for_is_refused_and_a_ca_bundle_makes_it_trusted(
    tmp_path: Path,
):
    with http_serve(created, tls=True) as server:
        item = delivery(tmp_path / "archive")
        with pytest.raises(DeliveryFailed, match=r"TLS: .*certificate verify failed"):
            webdav(server.url + "/dav/").deliver(item, soon())
        assert server.requests == []
        trusted = webdav(server.url + "/dav/", ca_bundle=server.ca_file)
        assert trusted.deliver(item, soon()).startswith(server.url + "/dav/Telekom/")
        assert [r.method for r in server.requests] == ["PUT"]
        assert server.requests[0].headers["if-none-match"] == "*"
        assert server.requests[0].body == item.path.read_bytes()


def test_a_server_that_asks_for_rest_is_given_it(tmp_path: Path):
    def busy(request):
        return 503, {"Retry-After": "120", "Content-Type": "text/plain"}, b"maintenance mode"

    with http_serve(busy) as server, pytest.raises(DeliveryFailed) as failed:
        webdav(server.url + "/").deliver(delivery(tmp_path / "archive"), soon())
    assert failed.value.retry_after == 120
    assert not failed.value.permanent
    assert str(failed.value) == "PUT: 503 Service Unavailable: maintenance mode"


def test_a_file_the_server_refuses_as_too_large_is_failed_for_good(tmp_path: Path):
    too_large = http_serve(lambda request: (413, {}, b""))
    with too_large as server, pytest.raises(DeliveryFailed) as failed:
        webdav(server.url + "/").deliver(delivery(tmp_path / "archive"), soon())
    assert failed.value.permanent
