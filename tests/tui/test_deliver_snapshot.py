"""Snapshots of the delivery states (pytest-textual-snapshot), fed the daemon's answers through
the screens' own messages; no daemon runs: the documents list with its Sent column, and a
document's detail view with each destination's state and words."""

from __future__ import annotations

import pytest

from gmid.control import protocol as p
from tests.tui.test_documents_snapshot import DETAILS, DOC, PATH
from tests.tui.test_snapshots import DOCUMENTS, app, connected, steady
from tui.messages import DocumentsLoaded
from tui.screens.document import DeliveriesLoaded, DetailsLoaded, DocumentScreen, EInvoiceLoaded
from tui.screens.documents import DeliveriesLoaded as StatesLoaded

pytest.importorskip("pytest_textual_snapshot")

SIZE = (100, 24)
DESTINATIONS = ["paperless", "books"]
REFUSAL = "paperless-ngx refused the document: HTTP 400 {'document': ['File type not supported']}"


def _states() -> p.DeliveryStates:
    items = []
    for i, doc in enumerate(DOCUMENTS):
        states = (
            [("paperless", "failed"), ("books", "done")]
            if i == 1
            else [("paperless", "pending")]
            if i == 0
            else [("paperless", "done"), ("books", "done")]
        )
        items += [p.DeliveryState(doc.id, name, state) for name, state in states]
    return p.DeliveryStates(destinations=DESTINATIONS, items=items)


def test_documents_with_their_delivery(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("d")
        page = p.DocumentPage(DOCUMENTS, total=58, offset=0, limit=100)
        screen = pilot.app.screen
        screen.post_message(StatesLoaded(_states(), [doc.id for doc in DOCUMENTS]))
        screen.post_message(DocumentsLoaded(page, (None, None, None, None), False))
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app(), run_before=before, terminal_size=SIZE)


def test_document_detail_with_its_delivery(snap_compare):
    outbox = p.OutboxPage(
        destinations=[
            p.DestinationInfo(name="paperless", type="paperless", failed=1),
            p.DestinationInfo(name="books", type="command", done=1),
        ],
        items=[
            p.OutboxItem(DOC.id, "paperless", "failed", 1, DOC.path, DOC.company, error=REFUSAL),
            p.OutboxItem(
                DOC.id, "books", "done", 1, DOC.path, DOC.company, reference="booked as B-0193"
            ),
        ],
    )

    async def before(pilot):
        await connected(pilot)
        await pilot.press("d")
        pilot.app.push_screen(DocumentScreen(DOC, PATH))
        await pilot.pause()
        pilot.app.screen.post_message(DetailsLoaded(DETAILS))
        pilot.app.screen.post_message(DeliveriesLoaded(outbox))
        pilot.app.screen.post_message(EInvoiceLoaded("(the e-invoice)"))
        await pilot.pause()

    assert snap_compare(app(), run_before=before, terminal_size=SIZE)
