"""The home screen, "Companies & Portals": one row per portal and per company, kept live; below
them, when the config has any, one row per watched IMAP mailbox."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from tui import format as fmt
from tui.messages import ModelChanged
from tui.model import Model
from tui.screens.page import Page, TitleBar

COLUMNS = (  # key, label, width: 80 columns with the cell padding and a scroll bar
    ("name", "Name", 18),
    ("type", "Type", 7),
    ("state", "State", 17),
    ("last", "Last run", 9),
    ("next", "Next run", 9),
    ("docs", "Docs", 6),
)
MAILBOX_COLUMNS = (  # the same 80 columns, State and Docs under the portals' own
    ("name", "Mailbox", 10),
    ("account", "Account", 15),
    ("state", "State", 20),
    ("last", "Last sync", 9),
    ("mails", "Mails", 6),
    ("docs", "Docs", 6),
)


def rows(model: Model, now) -> list[tuple[str, tuple]]:
    """The table's rows, portals first (in config order), then companies without a portal."""
    tz = model.tz
    out = []
    portal_docs = model.portal_docs
    for portal in model.portals.values():
        label, key, _ = fmt.portal_state(portal, model.waiting(portal.name))
        last = portal.last_run.finished_at if portal.last_run else None
        docs = None if portal_docs is None else portal_docs.get(portal.name, 0)
        out.append(
            (
                f"p:{portal.name}",
                (
                    fmt.clip(portal.name, 18),
                    "portal",
                    fmt.styled_state(label, key),
                    fmt.short_time(last, now, tz),
                    fmt.short_time(portal.next_run, now, tz) if portal.enabled else "-",
                    f"{fmt.count(docs):>6}",
                ),
            )
        )
    company_docs = model.company_docs or {}
    for company in model.company_rows():
        n = company_docs.get(company, 0) if model.company_docs is not None else None
        out.append(
            (
                f"c:{company}",
                (
                    fmt.clip(company, 18),
                    "company",
                    Text("by e-mail", style="dim"),
                    fmt.short_time(model.company_last.get(company), now, tz),
                    "-",
                    f"{fmt.count(n):>6}",
                ),
            )
        )
    return out


def mailbox_rows(model: Model, now) -> list[tuple[str, tuple]]:
    """The mailboxes' rows, in config order: who, how it goes, mails seen and documents filed."""
    return [
        (
            f"m:{box.name}",
            (
                fmt.clip(box.name, 10),
                fmt.clip(fmt.account(box), 15),
                fmt.mailbox_state(box, 20),
                fmt.short_time(box.last_sync, now, model.tz),
                f"{fmt.count(box.messages):>6}",
                f"{fmt.count(box.documents):>6}",
            ),
        )
        for box in model.mailboxes.values()
    ]


def detail(model: Model, key: str | None, width: int = 78) -> Text:
    """Three lines about the highlighted row: who, how the last run went, when the next one is."""
    if key is None:
        if not model.portals and not model.company_rows():
            return Text(
                "No portal yet. Press a to add a portal or a company.\n"
                "Mails forwarded to the SMTP listener are filed by sender.",
                style="dim",
            )
        return Text()
    lines = _detail_lines(model, key)
    for line in lines:
        line.truncate(width, overflow="ellipsis")  # one line each: the area is 3 lines high
    return Text("\n").join(lines)


def _detail_lines(model: Model, key: str) -> list[Text]:
    tz = model.tz
    kind, _, name = key.partition(":")
    if kind == "m":
        return _mailbox_lines(model, name)
    if kind == "c":
        n = (model.company_docs or {}).get(name, 0)
        last = model.company_last.get(name)
        lines = [Text.assemble((name, "bold"), " · a company: its documents come by e-mail")]
        lines.append(
            Text(f"{n:,} documents" + (f", the last {fmt.long_time(last, tz)}" if last else ""))
        )
        lines.append(Text("Enter: its documents", style="dim"))
        return lines
    portal = model.portals.get(name)
    if portal is None:
        return []
    waiting = model.waiting(name)
    label, _, progress = fmt.portal_state(portal, waiting)
    who = f" · user {fmt.mask(portal.username)}" if portal.username else ""
    lines = [Text.assemble((name, "bold"), f" · {portal.company} · {portal.connector}{who}")]
    run = portal.last_run
    if waiting is not None:
        lines.append(Text(f"waiting for a {waiting.kind}: {waiting.prompt} (c)", style="yellow"))
    elif progress:
        lines.append(Text(f"now: {label}", style="cyan"))
    elif run is None:
        lines.append(Text("last run: never"))
    else:
        line = Text(f"last run {fmt.long_time(run.finished_at, tz)}: {run.outcome}")
        if run.portal_message:
            line.append(f" «{run.portal_message}»", style="italic")
        elif run.message:
            line.append(f", {run.message}")
        lines.append(line)
    if not portal.enabled:
        lines.append(Text("disabled: runs only when started by hand", style="dim"))
    else:
        when = fmt.long_time(portal.next_run, tz) if portal.next_run else "not planned"
        why = f": {portal.next_reason}" if portal.next_reason else ""
        lines.append(Text(f"next run {when}{why}"))
    return lines


def _mailbox_lines(model: Model, name: str) -> list[Text]:
    box = model.mailboxes.get(name)
    if box is None:
        return []
    folders = ", ".join(f.folder for f in box.folders)
    lines = [Text.assemble((name, "bold"), f" · a mailbox · {fmt.account(box)} · {folders}")]
    if box.state == "failing":
        lines.append(Text(f"failing: {fmt.mailbox_reason(box)}", style="red"))
    else:
        line = Text.assemble("now ", fmt.mailbox_state(box, 20))
        if box.last_sync:
            line.append(f", last sync {fmt.long_time(box.last_sync, model.tz)}")
        lines.append(line)
    mails = f"{box.messages:,} mail{'' if box.messages == 1 else 's'} seen"
    docs = f"{box.documents:,} document{'' if box.documents == 1 else 's'} filed"
    lines.append(Text.assemble(f"{mails}, {docs} · ", ("Enter: its folders", "dim")))
    return lines


class HomeScreen(Page):
    """Companies & Portals, and the mailboxes."""

    MODE = "home"
    BINDINGS = [  # noqa: RUF012
        Binding("a", "add", "Add"),
        Binding("m", "mailboxes", "Mailboxes"),
        Binding("enter", "open", "Open", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, dict[str, tuple]] = {"portals": {}, "mailboxes": {}}
        self._order: dict[str, list[str]] = {"portals": [], "mailboxes": []}

    def compose(self) -> ComposeResult:
        yield TitleBar("Companies & Portals")
        yield Static(id="summary")
        for table_id, columns in (("portals", COLUMNS), ("mailboxes", MAILBOX_COLUMNS)):
            table: DataTable = DataTable(id=table_id, cursor_type="row", zebra_stripes=True)
            for key, label, width in columns:
                table.add_column(label, width=width, key=key)
            yield table
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.render_model()

    def on_screen_resume(self) -> None:
        self.render_model()

    def on_model_changed(self, message: ModelChanged) -> None:
        self.render_model()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "mailboxes":
            return bool(self.model.mailboxes)
        return super().check_action(action, parameters)

    def render_model(self) -> None:
        """Bring the tables up to date, touching only the cells that changed; the mailboxes'
        table shows only when the config has a mailbox."""
        now = self.app.now()  # type: ignore[attr-defined]
        self._update("portals", COLUMNS, rows(self.model, now))
        boxes = self.query_one("#mailboxes", DataTable)
        if not self.model.mailboxes and self.focused is boxes:
            self.query_one("#portals", DataTable).focus()
        boxes.display = bool(self.model.mailboxes)
        self._update("mailboxes", MAILBOX_COLUMNS, mailbox_rows(self.model, now))
        self.query_one("#summary", Static).update(self.summary())
        self._show_detail()

    def _update(self, table_id: str, columns: tuple, new: list[tuple[str, tuple]]) -> None:
        table = self.query_one(f"#{table_id}", DataTable)
        order = [key for key, _ in new]
        if order != self._order[table_id]:
            current = self._current_key(table_id)
            table.clear()
            for key, cells in new:
                table.add_row(*cells, key=key)
            self._order[table_id] = order
            if current in order:
                table.move_cursor(row=order.index(current), animate=False)
        else:
            shown = self._shown[table_id]
            for key, cells in new:
                before = shown.get(key)
                for (column, _, _), value, old in zip(columns, cells, before or (), strict=False):
                    if value != old:
                        table.update_cell(key, column, value)
        self._shown[table_id] = dict(new)

    def _current_key(self, table_id: str | None = None) -> str | None:
        """The highlighted row's key: of the given table, else of the one with the focus (also
        while a dialog is over this screen)."""
        if table_id is None:
            table_id = "mailboxes" if self.focused is self.query_one("#mailboxes") else "portals"
        table = self.query_one(f"#{table_id}", DataTable)
        order = self._order[table_id]
        if not order or table.cursor_row < 0 or table.cursor_row >= len(order):
            return None
        return order[table.cursor_row]

    def _show_detail(self) -> None:
        widget = self.query_one("#detail", Static)
        width = widget.content_size.width or 78
        widget.update(detail(self.model, self._current_key(), width))

    def on_resize(self) -> None:
        self._show_detail()

    def on_descendant_focus(self) -> None:
        self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self._open(event.row_key.value)

    def action_open(self) -> None:
        self._open(self._current_key())

    def action_mailboxes(self) -> None:
        """Go to the mailboxes' table, and back to the portals'."""
        boxes = self.query_one("#mailboxes", DataTable)
        if self.focused is boxes or not self.model.mailboxes:
            self.query_one("#portals", DataTable).focus()
        else:
            boxes.focus()

    def _open(self, key: str | None) -> None:
        from tui.dialogs.mailbox import MailboxDialog
        from tui.dialogs.portal import CompanyDialog, PortalDialog

        if key is None:
            return
        kind, _, name = key.partition(":")
        if kind == "m":
            self.app.push_screen(MailboxDialog(name))
        else:
            self.app.push_screen(PortalDialog(name) if kind == "p" else CompanyDialog(name))

    def action_add(self) -> None:
        from tui.dialogs.add import AddScreen

        self.app.push_screen(AddScreen())
