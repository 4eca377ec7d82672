"""A snapshot of each screen at 80x24 (pytest-textual-snapshot; `--snapshot-update` to accept).

The screens get fixed data through the very messages the app's workers post (Connected,
Counted, DocumentsLoaded, ScheduleLoaded, ...) and a fixed clock, so that nothing depends on
today's date; no daemon runs and nothing of ours is mocked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gmid.control import protocol as p
from tui.app import GmidApp
from tui.dialogs.mailbox import MailboxDialog
from tui.dialogs.portal import PortalDialog
from tui.messages import (
    Connected,
    ConnectorsLoaded,
    Counted,
    DaemonDown,
    DocumentsLoaded,
    Done,
    RecentLoaded,
    ScheduleLoaded,
)

pytest.importorskip("pytest_textual_snapshot")

NOW = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # a Tuesday, 09:00 in Berlin
SOCKET = Path("/run/user/1000/gmid/gmid.sock")


def run(portal: str, at: str, outcome: str, message: str, said: str | None = None) -> dict:
    return {
        "portal": portal,
        "started_at": at,
        "finished_at": at.replace(":00+", ":42+"),
        "outcome": outcome,
        "message": message,
        "portal_message": said,
        "new_documents": 0,
    }


def portal(name: str, company: str, state: str, **more) -> dict:
    return {"name": name, "company": company, "connector": "form", "enabled": True} | {
        "state": state,
        **more,
    }


PORTALS = [
    portal(
        "energie",
        "Demo Energie",
        "ok",
        last_run=run("energie", "2026-03-02T08:15:00+00:00", "ok", "6 new documents"),
        next_run="2026-03-09T08:30:00+00:00",
        next_reason="every 7 days since the last run",
        username="kunde@example.org",
    ),
    portal(
        "telekom",
        "Telekom",
        "running",
        progress="downloading RE-2026-02",
        last_run=run("telekom", "2026-02-01T07:00:00+00:00", "ok", "1 new document"),
    ),
    portal("stadtwerke", "Stadtwerke", "running", progress="logging in"),
    portal(
        "versicherung",
        "Allianz",
        "wrong credentials",
        last_run=run(
            "versicherung",
            "2026-03-03T06:00:00+00:00",
            "wrong credentials",
            "the portal refused the password",
            "E-Mail-Adresse oder Passwort ist falsch.",
        ),
    ),
    portal(
        "shop",
        "Shop GmbH",
        "portal changed",
        last_run=run(
            "shop",
            "2026-02-27T10:00:00+00:00",
            "portal changed",
            "no rows matched 'table.orders tr'",
        ),
        next_run="2026-03-04T07:00:00+00:00",
        next_reason="retry after a failure (1 h, doubling)",
    ),
    portal(
        "cloud",
        "Cloud AG",
        "unavailable",
        last_run=run("cloud", "2026-03-03T05:00:00+00:00", "unavailable", "HTTP 503"),
        next_run="2026-03-03T09:00:00+00:00",
        next_reason="retry after a failure (1 h, doubling)",
    ),
    portal(
        "mobilfunk",
        "Mobilfunk",
        "never run",
        next_run="2026-03-09T07:00:00+00:00",
        next_reason="due now, but quiet hours (sat-sun) and windows (mon-fri 08:00-19:00)",
    ),
    portal("bank", "Bank", "disabled", enabled=False),
]

CHALLENGE = {
    "id": "c1",
    "portal": "stadtwerke",
    "kind": "code",
    "prompt": "Wir haben Ihnen einen Code per SMS an +49 170 ***12 gesendet.",
    "medium": "sms",
    "seconds_left": 300,
    "retry_message": "Der Code ist falsch. Bitte versuchen Sie es erneut.",
}

STATUS = {
    "version": "0.1.0",
    "pid": 4242,
    "started_at": "2026-03-01T07:00:00+00:00",
    "uptime": 90000.0,
    "config": "/home/me/.config/gmid/config.yaml",
    "archive": "/home/me/Invoices",
    "state_dir": "/home/me/.local/state/gmid",
    "timezone": "Europe/Berlin",
    "documents": 58,
    "quarantined": 0,
    "smtp": {"enabled": True, "listen": "127.0.0.1:2525"},
    "portals": PORTALS,
    "challenges": [CHALLENGE],
}


MAILBOX = {  # one mailbox, one of its two folders refused (a folder renamed on the server)
    "name": "work",
    "host": "imap.example.org",
    "username": "kunde@example.org",
    "state": "failing",
    "error": "Rechnungen: SELECT Rechnungen: NO [NONEXISTENT] Mailbox doesn't exist: Rechnungen",
    "folders": [
        {"folder": "INBOX", "state": "idle", "error": None, "bytes": 48_213},
        {
            "folder": "Rechnungen",
            "state": "failing",
            "error": "SELECT Rechnungen: NO [NONEXISTENT] Mailbox doesn't exist: Rechnungen",
            "bytes": 1_204,
        },
    ],
    "last_sync": "2026-03-03T07:55:00+00:00",
    "messages": 1_234,
    "documents": 87,
    "bodies": 3,
    "bytes": 49_417,
}


def counted() -> Counted:
    seen: dict[int, tuple[str, str, str, str]] = {}
    spec = [
        ("Demo Energie", "portal", "energie", 6),
        ("Telekom", "portal", "telekom", 14),
        ("Shop GmbH", "portal", "shop", 9),
        ("Hausverwaltung", "smtp", "smtp", 3),
        ("Steuerberater", "smtp", "smtp", 12),
        ("Stadtwerke", "smtp", "smtp", 14),
    ]
    for company, source, name, n in spec:
        for i in range(n):
            seen[len(seen) + 1] = (company, source, name, f"2026-02-{10 + i % 18:02d}T09:00:00")
    return Counted(seen)


def document(i: int, company: str, source: str, number: str, amount: str) -> p.Document:
    day = f"2026-02-{28 - i:02d}"
    return p.Document(
        id=100 - i,
        sha256=f"{i:064x}",
        path=f"{company}/2026/{day} {company} {number}.pdf",
        size=48_000,
        media_type="application/pdf",
        source=source,
        source_name="energie" if source == "portal" else "smtp",
        company=company,
        received_at=f"{day}T09:{i:02d}:00+00:00",
        number=number,
        amount=amount,
    )


DOCUMENTS = [
    document(0, "Demo Energie", "portal", "DE-202602-100", "84.20"),
    document(1, "Telekom", "smtp", "RE-2026-02", "39.99"),
    document(2, "Steuerberater", "smtp", "2026-017", "476.00"),
    document(3, "Hausverwaltung", "smtp", "", ""),
    document(4, "Stadtwerke", "smtp", "SW-118832", "61.05"),
    document(5, "Shop GmbH", "portal", "ORD-77812", "129.90"),
]

PLAN = {
    "timezone": "Europe/Berlin",
    "runs": [
        {"at": "2026-03-03T09:00:00+00:00", "portal": "cloud", "reason": "retry after a failure"},
        {"at": "2026-03-04T07:00:00+00:00", "portal": "shop", "reason": "retry after a failure"},
        {"at": "2026-03-06T08:30:00+00:00", "portal": "telekom", "reason": "at fri 09:30"},
        {"at": "2026-03-09T07:00:00+00:00", "portal": "mobilfunk", "reason": "first run"},
        {"at": "2026-03-09T08:30:00+00:00", "portal": "energie", "reason": "every 7 days"},
    ],
    "quiet": [
        {
            "start": f"2026-03-0{d}T18:00:00+00:00",
            "end": f"2026-03-0{d + 1}T07:00:00+00:00",
            "why": "outside the windows",
        }
        for d in (3, 4, 5)
    ]
    + [
        {
            "start": "2026-03-06T18:00:00+00:00",
            "end": "2026-03-09T07:00:00+00:00",
            "why": "quiet: sat-sun",
        }
    ],
}

EVENTS = [
    p.Event("daemon.started", "2026-03-03T07:00:00+00:00", {"version": "0.1.0"}),
    p.Event("portal.started", "2026-03-03T07:58:00+00:00", {"portal": "telekom", "manual": True}),
    p.Event(
        "document.added",
        "2026-03-03T07:58:10+00:00",
        {
            "document": {
                "company": "Telekom",
                "path": "Telekom/2026/RE-2026-02.pdf",
                "source": "portal",
            }
        },
    ),
    p.Event(
        "challenge.pending",
        "2026-03-03T07:59:00+00:00",
        {"portal": "stadtwerke", "kind": "code", "prompt": "Code per SMS"},
    ),
    p.Event(
        "portal.finished",
        "2026-03-03T07:59:30+00:00",
        {
            "portal": "versicherung",
            "outcome": "wrong credentials",
            "message": "the portal refused the password",
            "portal_message": "E-Mail-Adresse oder Passwort ist falsch.",
        },
    ),
    p.Event(
        "mail.quarantined",
        "2026-03-03T07:59:50+00:00",
        {"source": "smtp", "path": "quarantine/2026-03-03T075950.eml"},
    ),
]

CONNECTORS = {
    "connectors": ["form", "example"],
    "forms": [
        {
            "name": "demo-energie",
            "description": "Demo Energie, gmid's demo supplier portal",
            "company": "Demo Energie",
        },
        {
            "name": "stadtwerke-musterstadt",
            "description": "Stadtwerke Musterstadt Kundenportal",
            "company": "Stadtwerke",
        },
    ],
}


def app() -> GmidApp:
    return GmidApp(SOCKET, connect=False, clock=lambda: NOW)


async def connected(pilot, *, challenges: bool = False, mailboxes: bool = False) -> None:
    """Feed the app a status (with or without a code waiting, a mailbox) and the counts."""
    status = dict(STATUS, challenges=[CHALLENGE] if challenges else [])
    if mailboxes:
        status["mailboxes"] = [MAILBOX]
    pilot.app.post_message(Connected(None, p.Status.from_dict(status)))
    pilot.app.post_message(counted())
    await pilot.pause()
    await pilot.pause()


def steady(pilot) -> None:
    """No blinking cursor: the same picture every time."""
    from textual.widgets import Input

    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False


def test_home(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("down", "down", "down")  # versicherung: the portal's own words

    assert snap_compare(app(), run_before=before)


async def to_the_mailboxes(pilot) -> None:
    """The mailboxes' table gets the focus (m): the detail lines are its row's."""
    await connected(pilot, mailboxes=True)
    await pilot.press("m")
    await pilot.pause()
    assert pilot.app.screen.focused.id == "mailboxes"


def test_home_with_a_mailbox(snap_compare):
    assert snap_compare(app(), run_before=to_the_mailboxes)


def test_mailbox_dialog(snap_compare):
    async def before(pilot):
        await to_the_mailboxes(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(pilot.app.screen, MailboxDialog)

    assert snap_compare(app(), run_before=before)


def test_portal_dialog(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("enter")

    assert snap_compare(app(), run_before=before)


# What the portal dialog says after a refused test login: a toast of five lines at 80x24.
REFUSED = (
    "energie: test login: wrong credentials: the portal refused the password "
    "(«E-Mail-Adresse oder Passwort ist falsch.»)"
)


async def refused_in_the_dialog(pilot) -> None:
    """The portal dialog, and the toast of its refused test login (the worker's message)."""
    await connected(pilot)
    await pilot.press("enter")
    assert isinstance(pilot.app.screen, PortalDialog)
    pilot.app.screen.post_message(Done(REFUSED, ok=False, action="test"))
    for _ in range(20):
        await pilot.pause(0.05)
        if pilot.app.screen.query("Toast"):  # a notification shows as a Toast
            break


def test_a_toast_over_the_portal_dialog(snap_compare):
    assert snap_compare(app(), run_before=refused_in_the_dialog)


async def test_a_toast_does_not_cover_the_dialog():
    async with app().run_test(size=(80, 24), notifications=True) as pilot:
        await refused_in_the_dialog(pilot)
        screen = pilot.app.screen
        [toast] = screen.query("Toast")
        dialog = screen.query_one(".dialog")
        assert "wrong credentials" in str(toast.render())
        assert not dialog.region.overlaps(toast.region), (dialog.region, toast.region)
        assert dialog.region.bottom <= toast.region.y  # its bottom border is drawn whole


def test_code_prompt_after_a_wrong_code(snap_compare):
    async def before(pilot):
        await connected(pilot, challenges=True)
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app(), run_before=before)


def test_captcha_prompt_without_an_image_decoder(snap_compare):
    captcha = dict(
        CHALLENGE,
        kind="captcha",
        medium="",
        prompt="Bitte geben Sie die Zeichen im Bild ein.",
        retry_message=None,
        image_path="/home/me/.local/state/gmid/challenges/c1.png",  # not there: path shown
        media_type="image/png",
    )

    async def before(pilot):
        status = dict(STATUS, challenges=[captcha])
        pilot.app.post_message(Connected(None, p.Status.from_dict(status)))
        await pilot.pause()
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app(), run_before=before)


def test_quiet_hours_confirmation(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press(*["down"] * 6, "enter", "enter")  # mobilfunk: Start download

    assert snap_compare(app(), run_before=before)


def test_schedule_form(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("enter", "down", "down", "down", "enter")  # energie: Edit schedule
        steady(pilot)

    assert snap_compare(app(), run_before=before)


def test_documents(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("d")
        page = p.DocumentPage(DOCUMENTS, total=58, offset=0, limit=100)
        pilot.app.screen.post_message(DocumentsLoaded(page, (None, None, None, None), False))
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app(), run_before=before)


def test_schedule(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("s")
        pilot.app.screen.post_message(ScheduleLoaded(p.SchedulePreview.from_dict(PLAN)))
        await pilot.pause()

    assert snap_compare(app(), run_before=before)


def test_log(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("l")
        pilot.app.screen.post_message(RecentLoaded(EVENTS))
        await pilot.pause()

    assert snap_compare(app(), run_before=before)


def test_add_portal_form(snap_compare):
    async def before(pilot):
        await connected(pilot)
        await pilot.press("a", "enter")
        from tui.dialogs.add import connector_entries

        pilot.app.screen.post_message(
            ConnectorsLoaded(connector_entries(p.Connectors.from_dict(CONNECTORS)))
        )
        await pilot.pause()
        steady(pilot)

    assert snap_compare(app(), run_before=before)


def test_daemon_not_running(snap_compare):
    async def before(pilot):
        reason = f"no gmid daemon is listening on {SOCKET} (start it with `gmid daemon`)"
        pilot.app.post_message(DaemonDown(str(SOCKET), reason))
        await pilot.pause()
        await pilot.pause()

    # started as the README says: gmid-tui -c config.example.yaml
    started = GmidApp(SOCKET, config=Path("config.example.yaml"), connect=False, clock=lambda: NOW)
    assert snap_compare(started, run_before=before)
