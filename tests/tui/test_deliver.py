"""Delivery in the TUI under the pilot, against a real daemon with two real destinations: a
folder, and a command that refuses every document until a file exists. The list shows the
failed delivery, the detail view the command's own words, and `t` (after the cause is fixed)
delivers it: the view says so and the file is at the command's destination."""

from __future__ import annotations

import shutil
import time

import pytest
from textual.widgets import DataTable

from gmid.control.client import ControlError
from tests.conftest import make_daemon_dir
from tests.support.mails import invoice_mail, make_pdf
from tests.tui.test_documents import SIZE, rows, shown, toasts, until
from tui.app import GmidApp
from tui.screens.document import DocumentScreen
from tui.screens.documents import DocumentsScreen

REFUSAL = "the books for 2026 are closed"


@pytest.fixture
def daemon():
    """A daemon delivering to a folder ("shelf") and a command ("books") that says REFUSAL
    and exits 65 (refused for good) while <dir>/open does not exist, and else copies the file
    to <dir>/books/."""
    d = make_daemon_dir()
    books = d.dir / "books"
    shelf = d.dir / "shelf"
    books.mkdir()
    shelf.mkdir()
    script = d.dir / "book.sh"
    script.write_text(
        f'test -e "{d.dir}/open" || {{ echo "{REFUSAL}" >&2; exit 65; }}\n'
        f'cp "$GMID_FILE" "{books}/" && echo "{books}/$GMID_NAME"\n'
    )
    d.config.write_text(
        d.config.read_text()
        + "deliver:\n"
        + f"  - name: shelf\n    type: folder\n    dir: {shelf}\n"
        + f"  - name: books\n    type: command\n    command: sh {script}\n    retry: 1s\n"
    )
    d.start()
    pdf = make_pdf("an invoice for the books")
    raw = invoice_mail(sender="rechnung@telekom.example", pdfs=[("Rechnung.pdf", pdf)])
    assert d.send(raw, sender="rechnung@telekom.example")[0] == 250
    deadline = time.monotonic() + 20
    while not d.call(lambda c: c.outbox(states=["failed"])).items:
        assert time.monotonic() < deadline, "the command never failed"
        time.sleep(0.1)
    try:
        yield d
    finally:
        code = d.stop()
        log = d.log_text()
        shutil.rmtree(d.dir, ignore_errors=True)
    assert code == 0 and "Traceback" not in log, log


def sent(app) -> str:
    return str(app.screen.query_one(DataTable).get_row_at(0)[-1])


def footer_keys(app) -> dict[str, str]:
    return {b.binding.key: b.binding.description for b in app.screen.active_bindings.values()}


async def test_a_failed_delivery_is_shown_and_retried(daemon):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: app.model.connected, what="the daemon")
        await pilot.press("d")
        screen = app.screen
        assert isinstance(screen, DocumentsScreen)
        await until(pilot, lambda: rows(app) == 1, what="the document")
        await until(pilot, lambda: sent(app) == "✗ books", what="the failed delivery")
        table = screen.query_one(DataTable)
        assert [c.label.plain for c in table.columns.values()][-1] == "Sent"
        assert footer_keys(app)["t"] == "Retry delivery"

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DocumentScreen), what="the detail")
        await until(pilot, lambda: app.screen.deliveries is not None, what="the deliveries")
        said = shown(app, "#doc-deliveries")
        assert "books (command): failed, 1 attempt(s)" in said
        assert REFUSAL in said  # the command's own words
        assert "shelf (folder): delivered" in said
        assert str(daemon.dir / "shelf") in said  # where the folder put it
        assert footer_keys(app)["t"] == "Retry delivery"

        (daemon.dir / "open").touch()  # the cause fixed
        await pilot.press("t")
        await until(pilot, lambda: "trying 1 delivery" in toasts(app), what="the retry")
        await until(
            pilot,
            lambda: "books (command): delivered" in shown(app, "#doc-deliveries"),
            what="the delivery",
        )
        said = shown(app, "#doc-deliveries")
        assert REFUSAL not in said and "2 attempt(s)" in said
        copied = list((daemon.dir / "books").iterdir())
        assert len(copied) == 1
        assert str(copied[0]) in said  # the reference: what the command printed
        original = daemon.archive / screen.docs[0].path
        assert copied[0].read_bytes() == original.read_bytes()

        await pilot.press("escape")
        assert app.screen is screen
        await until(pilot, lambda: sent(app) == "✓ 2", what="the list's state")

        await pilot.press("t")  # nothing failed any more
        await until(pilot, lambda: "nothing to retry" in toasts(app), what="the answer")


def test_the_states_of_a_page_and_what_is_refused(daemon):
    """`deliveries.states` answers a page of the list in one request; a wrong request gets a
    clear error."""
    doc_id = daemon.call(lambda c: c.documents()).documents[0].id
    states = daemon.call(lambda c: c.delivery_states([doc_id, doc_id + 1000]))
    assert states.destinations == ["shelf", "books"]
    assert {(s.document_id, s.destination, s.state) for s in states.items} == {
        (doc_id, "shelf", "done"),
        (doc_id, "books", "failed"),
    }
    for wrong, said in (
        ("1", "must be a list"),
        (list(range(1001)), "at most 1000"),
        ([1, "2"], "whole numbers"),
        ([-1], "whole numbers"),
    ):
        with pytest.raises(ControlError, match=said):
            daemon.call(lambda c, wrong=wrong: c.call("deliveries.states", document_ids=wrong))
