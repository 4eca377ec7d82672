"""The home screen's mailboxes, driven by the pilot against a real daemon watching a real Dovecot.

A mail with a PDF lands in the INBOX: the mailbox's row shows it idle, with the mail seen and the
document filed. Then the password file goes wrong and the config is reloaded: the row turns to
the refused login, and the detail line and the mailbox dialog give the server's own words.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from textual.widgets import DataTable, Static

from gmid.control import protocol as p
from tests.conftest import Daemon
from tests.mail.imap.test_watch import ImapSetup, invoice
from tests.support.dovecot import Dovecot
from tests.tui.test_tui import SIZE, text_of, until
from tui import format as fmt
from tui.app import GmidApp
from tui.dialogs.mailbox import MailboxDialog, facts
from tui.screens.home import HomeScreen


@pytest.fixture
def watching(dovecot: Dovecot) -> Iterator[Daemon]:
    """A daemon watching the INBOX of an empty Dovecot mailbox, as `work`."""
    daemon = ImapSetup(dovecot).configure().start()
    yield daemon
    assert daemon.stop() in (0, None), daemon.log_text()
    assert "Traceback" not in daemon.log_text(), daemon.log_text()
    shutil.rmtree(daemon.dir, ignore_errors=True)


def mailbox_cell(app, column: str) -> str:
    return str(app.screen.query_one("#mailboxes", DataTable).get_cell("m:work", column))


def dialog_text(app, selector: str) -> str:
    """What a Static of the dialog shows (a rich table), as plain text."""
    console = Console(width=72, file=io.StringIO(), record=True)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


def shown(app) -> bool:
    table = app.screen.query_one("#mailboxes", DataTable)
    return table.display and "m:work" in [key.value for key in table.rows]


async def test_a_mailbox_shows_its_mails_and_documents_then_the_servers_words(dovecot, watching):
    dc, daemon = dovecot, watching
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown(app), what="the mailbox's row")
        assert mailbox_cell(app, "account") == f"g•••@{dc.host}"  # the user masked, as a portal's
        await until(pilot, lambda: mailbox_cell(app, "state") == "idle", what="the first sync")

        raw, _ = invoice(1)
        await asyncio.to_thread(dc.append, "INBOX", raw)
        await until(pilot, lambda: mailbox_cell(app, "docs").strip() == "1", what="the document")
        await until(pilot, lambda: mailbox_cell(app, "mails").strip() == "1", what="the mail")
        await until(pilot, lambda: mailbox_cell(app, "state") == "idle", what="idle again")
        box = app.model.mailboxes["work"]
        synced = datetime.fromisoformat(box.last_sync).astimezone(ZoneInfo("Europe/Berlin"))
        assert mailbox_cell(app, "last") == synced.strftime("%H:%M")  # the daemon's local time

        await pilot.press("m")  # to the mailboxes' table: the detail line is the mailbox's
        detail = text_of(app, "#detail")
        assert "work · a mailbox" in detail and "INBOX" in detail
        assert "1 mail seen, 1 document filed" in detail
        await pilot.press("enter")
        assert isinstance(app.screen, MailboxDialog)
        folders = dialog_text(app, "#folders")
        assert "INBOX" in folders and "idle" in folders
        await pilot.press("escape")
        assert isinstance(app.screen, HomeScreen)

        # A wrong password, taken by a reload: the row says why, in the server's words.
        (daemon.dir / "imap.pw").write_text("wrong\n")
        assert await app.client.reload()
        await until(
            pilot,
            lambda: mailbox_cell(app, "state").startswith("login refused"),
            what="the refused login",
        )
        assert app.model.mailboxes["work"].state == "failing"
        assert (mailbox_cell(app, "mails").strip(), mailbox_cell(app, "docs").strip()) == ("1", "1")
        detail = text_of(app, "#detail")
        assert "failing: login refused" in detail
        assert "Authentication failed" in detail  # Dovecot's own words
        await pilot.press("enter")
        assert isinstance(app.screen, MailboxDialog)
        assert "Authentication failed" in dialog_text(app, "#folders")
    assert "wrong" not in daemon.log_text()


def test_a_blind_mailbox_says_why_as_a_warning_not_as_idle():
    """A server that counts mail it never lists leaves the mailbox connected but blind: its
    row says so with the reason, in yellow, where a healthy one says idle."""
    why = "the server counts 3 mails but lists none"
    box = p.MailboxInfo(
        "work", "imap.example", "me@example.org", "blind", why,
        folders=[p.FolderInfo("INBOX", "blind", why)],
    )  # fmt: skip
    cell = fmt.mailbox_state(box, 60)
    assert cell.plain == f"blind: {why}" and cell.style == "yellow"
    assert fmt.imap_state("idle").plain == "idle"


def test_a_working_mailbox_shows_its_note_in_the_dialog():
    """A server without UIDPLUS leaves deleted mails flagged: the mailbox works (idle) and its
    dialog says what the user should know, without calling it a failure."""
    note = "2 mail(s) deleted or moved stay flagged \\Deleted here (no UIDPLUS)"
    box = p.MailboxInfo("work", "imap.example", "me@example.org", "idle", note)
    out = io.StringIO()
    Console(file=out, width=120).print(facts(box, SimpleNamespace(tz=ZoneInfo("UTC"))))
    assert "Note" in out.getvalue() and note in out.getvalue()
    assert "failing" not in out.getvalue()
