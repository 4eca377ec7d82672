"""A snapshot of a document's detail view at 80x24 (pytest-textual-snapshot), fed the answers of
`documents.show` and `documents.render` through the screen's own messages; no daemon runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmid.control import protocol as p
from gmid.documents import read_einvoice
from gmid.documents.render import to_text
from tests.tui.test_snapshots import DOCUMENTS, app, connected
from tui.screens.document import DetailsLoaded, DocumentScreen, EInvoiceLoaded

pytest.importorskip("pytest_textual_snapshot")

CORPUS = Path(__file__).parents[1] / "documents" / "corpus"
DOC = DOCUMENTS[1]  # Telekom, RE-2026-02, 39.99
PATH = f"/home/me/Invoices/{DOC.path}"
DETAILS = p.DocumentDetails(
    document=DOC,
    path=PATH,
    fields={
        "number": {"value": "RE-2026-02", "from": "einvoice"},
        "date": {"value": "2026-02-27", "from": "einvoice"},
        "company": {"value": "Telekom", "from": "mail"},
        "amount": {"value": "39.99", "from": "einvoice"},
    },
    check=p.DocumentCheck(ok=True, problems=[]),
    sources=[
        p.DocumentSource(
            source="smtp",
            source_name="smtp",
            sha256=DOC.sha256,
            received_at="2026-02-27T09:01:00+00:00",
            original_name="Rechnung.pdf",
        )
    ],
)


def test_document_detail(snap_compare):
    invoice = read_einvoice((CORPUS / "FX" / "XRECHNUNG_Einfach.pdf").read_bytes(), "x.pdf")
    text = to_text(invoice, 76)

    async def before(pilot):
        await connected(pilot)
        await pilot.press("d")
        pilot.app.push_screen(DocumentScreen(DOC, PATH))
        await pilot.pause()
        pilot.app.screen.post_message(DetailsLoaded(DETAILS))
        pilot.app.screen.post_message(EInvoiceLoaded(text))
        await pilot.pause()

    assert snap_compare(app(), run_before=before)
