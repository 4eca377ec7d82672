"""A download that is a ZIP of documents, through a real run against a portal on loopback:
its documents are filed one by one, and a ZIP that breaks a limit is refused with nothing
written."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile

import pytest

from tests.support.portal_http import Request, serve
from tests.support.runner import started_runner


def pdf(name: str) -> bytes:
    return f"%PDF-1.4\n% {name}\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".encode()


def zipped(*members: tuple[str, bytes], encrypted: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2025, 3, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    data = bytearray(out.getvalue())
    if encrypted:  # marked as an encrypting tool marks it (zipfile writes no encryption)
        for header, flags in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            data[data.index(header) + flags] |= 0x1
    return bytes(data)


RECEIPTS = {
    "two": zipped(("a/receipt-1.pdf", pdf("one")), ("receipt-2.pdf", pdf("two")), ("x.txt", b"hi")),
    "bomb": zipped(("big.pdf", b"%PDF-1.4\n" + bytes(30 * 10**6))),
    "many": zipped(*((f"r{n}.pdf", pdf(str(n))) for n in range(1000))),
    "encrypted": zipped(("secret.pdf", pdf("secret")), encrypted=True),
    "nested": zipped(("inner.zip", zipped(("inner.pdf", pdf("inner"))))),
    "traversal": zipped(("../../escaped.pdf", pdf("escaped"))),
    "nothing": zipped(("notes.txt", b"no invoice here")),
    "xlsx": zipped(("[Content_Types].xml", b"<Types/>"), ("xl/a.xml", b"<a/>")),
    # with runs.max_download at 100000 bytes: the ZIP itself is small, what it unpacks is not
    "large member": zipped(("big.pdf", b"%PDF-1.4\n" + bytes(150_000))),
    "large total": zipped(*((f"r{n}.pdf", b"%PDF-1.4\n" + bytes(60_000)) for n in range(2))),
}


class Shop:
    """An API with one order, whose receipt is one of RECEIPTS."""

    def __init__(self, receipt: str):
        self.receipt = receipt
        self.downloads: list[str] = []

    def __call__(self, request: Request):
        if request.path == "/api/orders":
            row = {"id": "ord-7", "date": "2025-03-01", "total": 12.5}
            return 200, {"Content-Type": "application/json"}, json.dumps({"orders": [row]})
        if request.path == "/receipt/ord-7":
            self.downloads.append(request.path)
            body = RECEIPTS[self.receipt]
            return 200, {"Content-Type": "application/zip"}, body
        return 404, {}, b"not found"


CONFIG = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
portals:
  - name: shop
    company: Zip Shop
    form: {form}
runs:
  max_download: {cap}
"""


def description(url: str) -> dict:
    return {
        "start": url + "/",
        "login": {"type": "none"},
        "documents": {
            "type": "json",
            "pages": ["/api/orders"],
            "rows": "orders",
            "fields": {"id": "id", "date": "date", "amount": "total"},
            "download": {"url": "/receipt/{id}"},
        },
    }


async def runs(tmp_path, receipt: str, times: int, cap: int = 50 * 10**6):
    shop = Shop(receipt)
    path = tmp_path / "config.yaml"
    with serve(shop) as portal:
        form = json.dumps(description(portal.url))
        path.write_text(CONFIG.format(tmp=tmp_path, form=form, cap=cap))
        async with started_runner(path) as (runner, _config, index):
            records = [await runner.fetch("shop") for _ in range(times)]
            rows = index.query("SELECT source_ref, original_name, date, amount FROM documents")
    return shop, records, sorted(rows)


async def test_a_zip_of_two_pdfs_files_two_documents_and_a_second_run_downloads_nothing(
    tmp_path,
):
    shop, (first, second), rows = await runs(tmp_path, "two", 2)
    assert (first.outcome, first.new_documents) == ("ok", 2), first.message
    assert "x.txt" in first.message and "not a PDF, XML or image" in first.message
    assert [(ref, name) for ref, name, _date, _amount in rows] == [
        ("ord-7/a/receipt-1.pdf", "receipt-1.pdf"),
        ("ord-7/receipt-2.pdf", "receipt-2.pdf"),
    ]
    assert {(str(date), str(amount)) for _ref, _name, date, amount in rows} == {
        ("2025-03-01", "12.50")  # the list's 12.5, written as an amount
    }
    files = sorted(p.read_bytes() for p in (tmp_path / "archive").rglob("*.pdf"))
    assert files == sorted([pdf("one"), pdf("two")])
    assert (second.outcome, second.new_documents) == ("ok", 0), second.message
    assert len(shop.downloads) == 1  # the second run did not download the ZIP again


@pytest.mark.parametrize(
    ("receipt", "words"),
    [
        ("bomb", "zip bomb"),
        ("many", "more than 100 files"),
        ("encrypted", "encrypted member"),
        ("nested", "a ZIP inside the ZIP is not opened"),
        ("traversal", "outside its folder"),
        ("nothing", "a ZIP with no PDF, XML or image in it"),
        ("xlsx", "an office document or another packaged file"),
        ("large member", "member 'big.pdf' is over the 100000 byte cap"),
        ("large total", "members come to more than the 100000 byte cap"),
    ],
)
async def test_a_zip_that_breaks_a_limit_is_refused_with_nothing_written(tmp_path, receipt, words):
    cap = 100_000 if receipt.startswith("large") else 50 * 10**6
    _shop, [record], rows = await runs(tmp_path, receipt, 1, cap)
    assert record.outcome == "error" and words in record.message, record.message
    assert rows == []
    archive = tmp_path / "archive"
    assert not archive.exists() or not [p for p in archive.rglob("*") if p.is_file()]
    assert not list(tmp_path.parent.rglob("escaped.pdf"))


async def test_gmid_try_saves_the_documents_of_a_zip_and_notes_what_it_left_out(tmp_path):
    from gmid.portals.tryout import try_portal

    path, into = tmp_path / "config.yaml", tmp_path / "tried"
    with serve(Shop("two")) as portal:
        form = json.dumps(description(portal.url))
        path.write_text(CONFIG.format(tmp=tmp_path, form=form, cap=50 * 10**6))
        async with started_runner(path) as (runner, config, index):
            report = await asyncio.to_thread(
                try_portal,
                config.portals[0],
                config,
                runner.archive,
                index,
                runner.broker,
                runner.events,
                download=1,
                into=into,
            )
            assert index.count() == 0  # a trial files nothing
    saved = sorted(p.read_bytes() for p in into.iterdir())
    assert report.outcome == "ok" and saved == sorted([pdf("one"), pdf("two")])
    assert any("x.txt" in (step.text or "") for step in report.steps if step.kind == "note")


def test_a_zip64_end_record_is_refused_before_its_table_is_read():
    from gmid.errors import DownloadRejected
    from gmid.portals.unzip import documents_in

    data = zipped(("a.pdf", pdf("a")))
    end = data.rindex(b"PK\x05\x06")
    locator = b"PK\x06\x07" + bytes(4) + (10**9).to_bytes(8, "little") + (1).to_bytes(4, "little")
    with pytest.raises(DownloadRejected, match="ZIP64"):
        documents_in(data[:end] + locator + data[end:], 10**6)
    assert documents_in(data, 10**6)[0][0].data == pdf("a")  # the same ZIP without it is read
