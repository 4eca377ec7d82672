"""The Textual dashboard driven by its pilot against a real daemon on a temp socket.

The daemon runs the demo portal that asks for an SMS code; the TUI shows its row, starts a
download from the portal dialog, pops the code prompt, sends what is typed, and the documents
appear. Keys go in as a user types them: a single letter typed while an Input has focus lands
in the Input, so each test leaves an Input (Escape, Enter) before pressing a page's key.
"""

from __future__ import annotations

import ast
import asyncio
import shutil
import time
from pathlib import Path

import pytest
import yaml
from textual.widgets import DataTable, Input, OptionList

from gmid.demo.portal import DemoPortal, running
from tests.conftest import ROOT, make_daemon_dir
from tests.portals.test_runs import CODE, PORTAL
from tests.support.mails import invoice_mail, make_pdf
from tui.app import GmidApp
from tui.dialogs.add import AddScreen
from tui.dialogs.portal import PortalDialog
from tui.dialogs.prompt import CodePrompt
from tui.screens.documents import DocumentsScreen
from tui.screens.down import DownScreen
from tui.screens.home import HomeScreen
from tui.screens.log import LogScreen
from tui.screens.schedule import ScheduleScreen

SIZE = (80, 24)


@pytest.fixture
def portal():
    with running(DemoPortal(code=CODE), port=0) as demo:
        yield demo


def _stop(daemon) -> None:
    """Stop the daemon (None: it was not running), check its log, remove its folder."""
    assert daemon.stop() in (0, None), daemon.log_text()
    assert "Traceback" not in daemon.log_text(), daemon.log_text()
    shutil.rmtree(daemon.dir, ignore_errors=True)


@pytest.fixture
def daemon(portal):
    extra = PORTAL.format(port=portal.port, password="demo", code_timeout="30s")
    extra = extra.replace("    username: demo", "    enabled: false\n    username: demo", 1)
    d = make_daemon_dir(extra=extra).start()
    yield d
    _stop(d)


async def until(pilot, predicate, timeout: float = 15, what: str = "") -> None:
    """Let the app run until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def rows(app) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [key.value for key in table.rows]


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def cell(app, row: str, column: str) -> str:
    return str(app.screen.query_one(DataTable).get_cell(row, column))


async def choose(pilot, label: str) -> None:
    """Highlight the option with this label in the focused screen's option list and select it."""
    options = pilot.app.screen.query_one(OptionList)
    labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    index = next(i for i, text in enumerate(labels) if label in text)
    options.focus()
    options.highlighted = index
    await pilot.press("enter")


async def test_a_download_started_in_the_portal_dialog_asks_the_code_and_files_documents(
    daemon, portal
):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:energie" in rows(app), what="the portal's row")
        assert cell(app, "p:energie", "type") == "portal"
        assert cell(app, "p:energie", "state") == "disabled"

        await pilot.press("enter")
        assert isinstance(app.screen, PortalDialog)
        # a portal of the user's own config.yaml: what would rewrite it is shown, disabled
        options = app.screen.query_one(OptionList)
        shown = [options.get_option_at_index(i) for i in range(options.option_count)]
        refused = {str(o.prompt).split("  ")[0]: o for o in shown if o.disabled}
        assert set(refused) == {"Change login", "Edit schedule", "Enable", "Remove"}
        assert "line" in str(refused["Remove"].prompt) and "change it there" in str(
            refused["Remove"].prompt
        )
        await choose(pilot, "Start download")
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the code prompt")
        prompt = app.screen
        assert "Wir haben Ihnen einen Code per SMS" in str(
            prompt.query_one("#prompt-text").render()
        )
        assert "sent by SMS" in str(prompt.query_one("#meta").render())

        await pilot.press(*"000000", "enter")  # a wrong code: the portal says so, asked again
        await until(
            pilot,
            lambda: isinstance(app.screen, CodePrompt) and app.screen is not prompt,
            what="the second prompt",
        )
        assert "Der Code ist falsch" in str(app.screen.query_one("#retry").render())
        await pilot.press(*CODE, "enter")

        await until(pilot, lambda: isinstance(app.screen, PortalDialog), what="the dialog again")
        await until(pilot, lambda: app.model.portals["energie"].state == "ok", what="the run")
        await until(pilot, lambda: (app.model.portal_docs or {}).get("energie") == 6)
        await pilot.press("escape")
        await until(pilot, lambda: cell(app, "p:energie", "docs").strip() == "6")

        await pilot.press("d")
        assert isinstance(app.screen, DocumentsScreen)
        await until(pilot, lambda: len(rows(app)) == 6, what="the documents")
        assert {d.company for d in app.screen.docs} == {"Demo Energie"}
        numbers = {doc.number for doc in app.screen.docs}
        assert numbers == {invoice["number"] for invoice in portal.invoices}
    # The code is the portal's secret: it must not land in the daemon's log through the TUI.
    assert CODE not in daemon.log_text().replace(f"code is {CODE}", "")


async def test_the_prompt_can_wait_and_come_back(daemon):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "p:energie" in rows(app))
        await app.client.fetch("energie")  # started elsewhere (the CLI, the scheduler)
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the prompt")
        await pilot.press("escape")  # later
        assert isinstance(app.screen, HomeScreen)
        assert cell(app, "p:energie", "state") == "waiting for code"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the prompt again")
        await pilot.press(*CODE, "enter")
        await until(pilot, lambda: app.model.portals["energie"].state == "ok", what="the run")


@pytest.fixture
def two_portals(portal):
    one = PORTAL.format(port=portal.port, password="demo", code_timeout="30s")
    one = one.replace("    username: demo", "    enabled: false\n    username: demo", 1)
    entry = one[one.index("  - name: energie") : one.index("runs:")]
    extra = one.replace("runs:", entry.replace("name: energie", "name: wasser") + "runs:", 1)
    d = make_daemon_dir(extra=extra).start()
    yield d
    _stop(d)


async def test_codes_asked_at_once_come_one_prompt_after_the_other(two_portals):
    app = GmidApp(two_portals.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: {"p:energie", "p:wasser"} <= set(rows(app)))
        await app.client.fetch("energie")
        await app.client.fetch("wasser")
        await until(pilot, lambda: len(app.model.challenges) == 2, what="both codes asked")
        assert sum(isinstance(s, CodePrompt) for s in app.screen_stack) == 1
        first = app.screen.pending.info.portal
        await pilot.press(*CODE, "enter")
        await until(
            pilot,
            lambda: isinstance(app.screen, CodePrompt) and app.screen.pending.info.portal != first,
            what="the second prompt",
        )
        await pilot.press(*CODE, "enter")
        await until(
            pilot,
            lambda: {p.state for p in app.model.portals.values()} == {"ok"},
            what="both runs",
        )
        assert isinstance(app.screen, HomeScreen)


async def test_without_a_daemon_it_says_how_to_start_one_and_connects_when_it_comes():
    d = make_daemon_dir()
    try:
        app = GmidApp(d.socket, config=d.config, retry=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, DownScreen), what="the down screen")
            await until(pilot, lambda: text_of(app, "#down-text"), what="its text")
            text = text_of(app, "#down-text")
            assert str(d.socket) in text and f"gmid daemon -c {d.config}" in text
            assert "systemctl --user start gmid" in text
            await pilot.press("d")  # no page to go to without a daemon
            assert isinstance(app.screen, DownScreen)

            await asyncio.to_thread(d.start)
            await until(pilot, lambda: isinstance(app.screen, HomeScreen), what="reconnecting")
            assert app.model.connected

            # A restart while the TUI runs: down, then back by itself.
            await asyncio.to_thread(d.stop)
            await until(pilot, lambda: isinstance(app.screen, DownScreen), what="the loss")
            await asyncio.to_thread(d.start)
            await until(pilot, lambda: isinstance(app.screen, HomeScreen), what="the restart")
            await until(pilot, lambda: app.model.status.pid == d.proc.pid)
    finally:
        _stop(d)


FORM = """\
description: the demo portal of this test
company: Demo Energie
form:
  start: http://127.0.0.1:{port}/login
  login: {{form: "form#login", fields: {{username: email, password: password}},
          success: {{selector: "a.logout"}}, failure: {{selector: ".alert"}}}}
  code: {{when: {{selector: "form#otp"}}, form: "form#otp", field: code, medium: sms}}
  documents:
    pages: [/invoices]
    rows: "table.invoices tbody tr"
    fields: {{id: {{selector: "td.number"}}, number: td.number}}
    download: {{selector: "a.pdf"}}
"""


@pytest.fixture
def empty_daemon(portal):
    d = make_daemon_dir(extra="include: portals.d/*.yaml\n")
    (d.dir / "forms").mkdir()
    (d.dir / "forms" / "testportal.yaml").write_text(FORM.format(port=portal.port))
    d.start()
    yield d
    _stop(d)


async def fill(pilot, widget_id: str, text: str) -> None:
    widget = pilot.app.screen.query_one(f"#{widget_id}", Input)
    widget.focus()
    widget.value = text
    await pilot.pause()


async def test_adding_a_portal_writes_portals_d_and_its_row_appears(empty_daemon):
    d = empty_daemon
    app = GmidApp(d.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.model.connected)
        await pilot.press("a")
        assert isinstance(app.screen, AddScreen)
        await pilot.press("enter")  # the first kind: an online portal
        await until(pilot, lambda: app.screen.connectors, what="the connectors list")
        await pilot.press(*"testportal")  # the search field has the focus
        options = app.screen.query_one("#connector-list", OptionList)
        assert options.option_count == 1
        await pilot.press("enter", "enter")  # to the list, then pick it
        assert app.screen.query_one("#p-name", Input).value == "testportal"
        assert app.screen.query_one("#p-company", Input).value == "Demo Energie"
        await fill(pilot, "p-user", "demo")
        await fill(pilot, "p-password", "demo")
        await fill(pilot, "p-at", "tue 09:30")
        app.screen.query_one("#add-portal").press()
        await until(pilot, lambda: isinstance(app.screen, HomeScreen), what="back home")
        await until(pilot, lambda: "p:testportal" in rows(app), what="the new row")
        assert cell(app, "p:testportal", "state") == "never run"

        written = d.dir / "portals.d" / "testportal.yaml"
        entry = yaml.safe_load(written.read_text())
        entry = entry["portals"][0] if "portals" in entry else entry
        assert entry["username"] == "demo" and entry["schedule"] == {"at": ["tue 09:30"]}
        assert "demo" not in str(entry.get("password"))  # in the secret store, by reference
        assert "password" not in (d.config.read_text())  # config.yaml is the user's

        # The portal dialog's actions on it: test login (with its code), disable, remove.
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("p:testportal"))  # companies are rows too
        await pilot.pause()
        await pilot.press("enter")
        assert isinstance(app.screen, PortalDialog)
        await choose(pilot, "Test login")
        await until(pilot, lambda: isinstance(app.screen, CodePrompt), what="the test's code")
        await pilot.press(*CODE, "enter")
        await until(pilot, lambda: isinstance(app.screen, PortalDialog))
        await until(pilot, lambda: app.model.portals["testportal"].state == "never run")
        assert app.model.portals["testportal"].last_run is None  # a test is not a run

        await choose(pilot, "Disable")
        await until(pilot, lambda: not app.model.portals["testportal"].enabled, what="disabled")
        assert "enabled: false" in written.read_text()

        await choose(pilot, "Remove")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, HomeScreen), what="the dialog closed")
        await until(pilot, lambda: "p:testportal" not in rows(app), what="the row gone")
        assert not written.exists()


async def test_a_company_and_a_suggestion_from_the_add_screen(empty_daemon, portal):
    d = empty_daemon
    app = GmidApp(d.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.model.connected)
        await pilot.press("a", "down", "enter")  # a company
        await fill(pilot, "c-name", "Wasserwerk")
        await fill(pilot, "c-senders", "rechnung@wasser.example, @wasserwerk.example")
        app.screen.query_one("#add-company").press()
        await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        await until(pilot, lambda: "c:Wasserwerk" in rows(app), what="the company's row")
        assert (d.dir / "portals.d" / "company-wasserwerk.yaml").exists()
        # no document yet: 0, once counted, not "…" for ever
        await until(pilot, lambda: app.model.company_docs is not None, what="the count")
        assert cell(app, "c:Wasserwerk", "docs").strip() == "0"

        await pilot.press("a", "down", "down", "enter")  # suggest a portal
        await fill(pilot, "s-url", f"http://127.0.0.1:{portal.port}/login")
        app.screen.query_one("#suggest").press()
        result = app.screen.query_one("#suggest-result")
        await until(pilot, lambda: "Draft written to" in str(result.render()), what="the draft")
        assert "portals.d" in str(result.render())


async def test_documents_are_filtered_by_text_company_and_date(daemon, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for i, sender in enumerate(["rechnung@telekom.example", "x@stadtwerke.example"] * 3):
        pdf = make_pdf(f"Invoice {i}")
        code, _ = daemon.send(invoice_mail(sender=sender, pdfs=[(f"R-{i}.pdf", pdf)]))
        assert code == 250
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "c:Telekom" in rows(app), what="the companies' rows")
        # the row may come with the status, before the documents are counted
        await until(pilot, lambda: cell(app, "c:Telekom", "docs").strip() == "3", what="counts")
        await pilot.press("d")
        screen = app.screen
        await until(pilot, lambda: len(rows(app)) == 6, what="every document")

        await pilot.press("slash", *"R-4")
        await until(pilot, lambda: len(rows(app)) == 1, what="the text filter")
        assert screen.docs[0].original_name == "R-4.pdf"
        await pilot.press("ctrl+a", "ctrl+k", "escape")  # empty the search, back to the table
        await until(pilot, lambda: len(rows(app)) == 6)

        screen.query_one("#company").value = "Telekom"
        await until(pilot, lambda: len(rows(app)) == 3, what="the company filter")
        assert {doc.company for doc in screen.docs} == {"Telekom"}

        await fill(pilot, "since", "2999-01-01")
        await until(pilot, lambda: screen.total == 0 and len(rows(app)) == 0, what="since")
        await fill(pilot, "since", "not a date")
        await pilot.pause(0.2)
        assert "a date like" in str(screen.query_one("#doc-summary").render())

        await fill(pilot, "since", "")
        await until(pilot, lambda: len(rows(app)) == 3)
        await pilot.press("escape", "down")  # the highlighted document's path is shown
        shown = str(screen.query_one("#doc-detail").render())
        assert shown == str(daemon.archive / screen.docs[1].path)


async def test_schedule_and_log_pages(daemon):
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.model.connected)
        await pilot.press("s")
        assert isinstance(app.screen, ScheduleScreen)
        await until(pilot, lambda: app.screen.plan is not None, what="the plan")
        text = str(app.screen.query_one("#timeline").render())
        assert "Times in Europe/Berlin" in text and "disabled portals run only" in text
        await pilot.press("l")
        assert isinstance(app.screen, LogScreen)
        await until(pilot, lambda: app.screen.recent, what="the recent events")
        assert any(e.type == "daemon.started" for e in app.screen.recent)
        await pilot.press("h")
        assert isinstance(app.screen, HomeScreen)


async def test_documents_load_page_by_page_as_the_cursor_goes_down(daemon, monkeypatch):
    import tui.screens.documents

    monkeypatch.setattr(tui.screens.documents, "FIRST_PAGE", 2)
    monkeypatch.setattr(tui.screens.documents, "MORE", 2)
    for i in range(7):
        mail = invoice_mail(sender="x@stadtwerke.example", pdfs=[(f"P{i}.pdf", make_pdf(str(i)))])
        assert daemon.send(mail)[0] == 250
    app = GmidApp(daemon.socket)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.model.connected)
        await pilot.press("d")
        await until(pilot, lambda: app.screen.total == 7, what="the first page")
        assert len(rows(app)) < 7
        for _ in range(7):
            await pilot.press("down")
        await until(pilot, lambda: len(rows(app)) == 7, what="the other pages")
        assert len({doc.id for doc in app.screen.docs}) == 7


def test_half_blocks_draw_two_pixel_rows_per_line():
    """The captcha fallback where no terminal graphics are: ▀ in the upper pixel's colour on
    the lower one's (what Pillow decodes, when it is installed)."""
    from tui.image import half_blocks

    red, blue, white = (255, 0, 0), (0, 0, 255), (255, 255, 255)
    text = half_blocks([[red, blue], [white, red], [blue, white]])
    assert text.plain == "▀▀\n▀▀"
    cells = [
        (span.style.color.triplet, span.style.bgcolor and span.style.bgcolor.triplet)
        for span in text.spans
    ]
    assert cells[:2] == [(red, white), (blue, red)]
    assert cells[2:] == [(blue, None), (white, None)]  # the odd last row has nothing below it


def test_the_tui_imports_only_gmid_control():
    """tui/ talks to the daemon through its socket: gmid.control, never daemon internals."""
    for path in sorted((ROOT / "tui").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name == "gmid" or name.startswith("gmid."):
                    assert name.startswith("gmid.control"), f"{path.name} imports {name}"


def test_the_socket_comes_from_the_options_or_the_config(tmp_path, monkeypatch):
    from tui.options import parser, socket_path

    config = tmp_path / "config.yaml"
    monkeypatch.setenv("GMID_TEST_RUN", str(tmp_path / "run"))
    config.write_text("control:\n  socket: $GMID_TEST_RUN/g.sock\n")
    assert socket_path(parser().parse_args(["-c", str(config)])) == tmp_path / "run" / "g.sock"
    config.write_text("control:\n  socket: rel/g.sock\n")
    assert socket_path(parser().parse_args(["-c", str(config)])) == tmp_path / "rel" / "g.sock"
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "rt"))
    config.write_text("timezone: UTC\n")
    assert socket_path(parser().parse_args(["-c", str(config)])) == tmp_path / "rt" / "gmid.sock"
    args = parser().parse_args(["--socket", "/x/y.sock", "-c", str(config)])
    assert socket_path(args) == Path("/x/y.sock")


def test_an_unset_variable_in_the_socket_path_is_reported_as_the_config_does(
    tmp_path, monkeypatch, capsys
):
    from gmid.config.load import load_config
    from gmid.errors import ConfigError
    from tui.app import main
    from tui.options import OptionError, parser, socket_path

    monkeypatch.delenv("GMID_TEST_UNSET", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text("timezone: UTC\ncontrol:\n  socket: $GMID_TEST_UNSET/g.sock\n")
    with pytest.raises(ConfigError) as by_config:
        load_config(config)
    with pytest.raises(OptionError) as by_tui:
        socket_path(parser().parse_args(["-c", str(config)]))
    said = f"{config}:3: control.socket: environment variable GMID_TEST_UNSET is not set"
    assert [str(problem) for problem in by_config.value.problems] == [said]
    assert str(by_tui.value) == said
    assert main(["-c", str(config)]) == 2
    assert capsys.readouterr().err == f"gmid-tui: {said}\n"

    config.write_text(f"control:\n  socket: /tmp/{'x' * 120}/g.sock\n")
    with pytest.raises(OptionError, match="a Unix socket path may have at most 107"):
        socket_path(parser().parse_args(["-c", str(config)]))
    config.write_text("control:\n  socket: null\n")
    assert socket_path(parser().parse_args(["-c", str(config)])).name == "gmid.sock"


def test_the_schedule_bar_does_not_show_past_hours_of_today_as_allowed():
    """The only window is 08:00-19:00; at 12:00 the morning is past, not green."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from gmid.control import protocol as p
    from tui.screens.schedule import timeline

    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 3, 12, 0, tzinfo=berlin)
    plan = p.SchedulePreview.from_dict(
        {
            "timezone": "Europe/Berlin",
            "runs": [],
            "quiet": [
                {
                    "start": "2026-03-03T19:00:00+01:00",
                    "end": "2026-03-04T08:00:00+01:00",
                    "why": "outside the windows",
                }
            ],
        }
    )
    lines = timeline(plan, now, berlin).plain.splitlines()
    today = next(line for line in lines if line.startswith("Tue 03 Mar"))
    bar = today[11 : 11 + 48]
    assert bar == "·" * 24 + "━" * 14 + "░" * 10  # 00-12 past, 12-19 allowed, 19-24 quiet
    tomorrow = next(line for line in lines if line.startswith("Wed 04 Mar"))
    assert tomorrow[11 : 11 + 16] == "░" * 16 and "·" not in tomorrow
