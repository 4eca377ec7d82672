"""The portal dialog (Enter on a portal row): its details and an Actions column; and a company's."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from gmid.control import protocol as p
from tui import format as fmt
from tui import link
from tui.dialogs.common import AskPath, Confirm, LoginForm, ScheduleForm, close
from tui.dialogs.trial import TryScreen
from tui.messages import DaemonEvent, Done, ModelChanged
from tui.model import Model


def facts(model: Model, name: str) -> Table:
    """The portal's details as label / value lines."""
    portal = model.portals[name]
    tz = model.tz
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    waiting = model.waiting(name)
    label, key, _ = fmt.portal_state(portal, waiting)
    grid.add_row("Company", portal.company)
    grid.add_row("Connector", portal.connector)
    if portal.username:
        grid.add_row("User", fmt.mask(portal.username))
    grid.add_row("State", fmt.styled_state(label, key, 40))
    run = portal.last_run
    grid.add_row("Last run", fmt.run_summary(run, tz))
    if run and run.portal_message:
        grid.add_row("Portal said", Text(f"«{run.portal_message}»", style="italic"))
    if portal.credentials_changed:
        grid.add_row("", Text("the credentials changed since: the next run tries them"))
    if portal.enabled:
        grid.add_row("Next run", fmt.long_time(portal.next_run, tz))
        if portal.next_reason:
            grid.add_row("", portal.next_reason)
    else:
        grid.add_row("Next run", Text("disabled: only by hand", style="dim"))
    if portal.schedule:
        said = " · ".join(
            f"{k} {', '.join(v) if isinstance(v, list) else v}"
            for k, v in portal.schedule.items()
            if v
        )
        grid.add_row("Schedule", said)
    docs = None if model.portal_docs is None else model.portal_docs.get(name, 0)
    grid.add_row("Documents", fmt.count(docs))
    return grid


def quiet_now(reason: str | None) -> bool:
    """Whether the scheduler said the portal is held back by quiet hours or windows."""
    return bool(reason) and any(word in reason.lower() for word in ("quiet", "window"))


def describe_result(result: p.RunInfo) -> str:
    """How a test login (or any run) went: its outcome, what gmid and the portal said."""
    text = f"{result.outcome}: {result.message}" if result.message else result.outcome
    if result.portal_message:
        text += f" («{result.portal_message}»)"
    return text


SESSION_HELP = (
    "Log in to the portal in your browser, then export its cookies in the Netscape "
    "cookies.txt format (an extension such as “Get cookies.txt LOCALLY”). The next run "
    "uses them instead of logging in. They open your account: keep the file safe, delete it after."
)


def session_imported(result: p.SessionImported) -> str:
    """What an import kept and dropped, in a line or two (names and domains, never values)."""
    n = result.imported
    text = f"session imported: {n} cookie{'' if n == 1 else 's'} for {', '.join(result.hosts)}"
    dropped = [f"{result.dropped_other} of other sites"] if result.dropped_other else []
    if result.dropped_expired:
        dropped.append(f"{result.dropped_expired} expired")
    if result.bad_lines:
        dropped.append(f"{result.bad_lines} lines not understood")
    return text + (f"\ndropped: {', '.join(dropped)}" if dropped else "")


CHANGES = frozenset({"login", "schedule", "toggle", "remove"})  # what rewrites the portal's entry


def _option(key: str, label: str, read_only: str | None) -> Option:
    """An action; one that would change a portal gmid may not rewrite is shown, disabled, with
    the reason, rather than offered and then refused."""
    if read_only and key in CHANGES:
        return Option(Text.assemble(label, (f"  ({read_only})", "dim")), id=key, disabled=True)
    return Option(label, id=key)


class PortalDialog(ModalScreen[None]):
    """Details of one portal, and what can be done with it."""

    BINDINGS = [Binding("escape", "close", "Close")]  # noqa: RUF012

    def __init__(self, name: str):
        super().__init__()
        self.portal = name
        self._actions: list[str] = []

    @property
    def model(self) -> Model:
        return self.app.model  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.portal, classes="dialog-title")
            with Horizontal():
                yield Static(id="facts")
                with Vertical(id="actions"):
                    yield Label("Actions", classes="column-title")
                    yield OptionList(id="action-list")
            yield Static("↑↓ choose · Enter do it · Esc close", classes="hint")

    def on_mount(self) -> None:
        self.show_model()
        self.set_focus(self.query_one("#action-list", OptionList))

    def on_model_changed(self, message: ModelChanged) -> None:
        self.show_model()

    def on_daemon_event(self, message: DaemonEvent) -> None:
        event = message.event
        if event.type == "portal.finished" and event.data.get("portal") == self.portal:
            outcome = event.data.get("outcome", "")
            self.notify(
                f"{self.portal}: {outcome}: {event.data.get('message') or ''}".rstrip(": "),
                severity="information" if outcome == "ok" else "warning",
            )

    def show_model(self) -> None:
        portal = self.model.portals.get(self.portal)
        if portal is None:
            if self.model.connected:  # removed, or gone with a reload
                close(self)
            return
        self.query_one("#facts", Static).update(facts(self.model, self.portal))
        actions = [("fetch", "Start download")]
        if self.model.waiting(self.portal):
            actions.append(("code", "Enter the code"))
        actions += [
            ("test", "Test login"),
            ("login", "Change login"),
            ("schedule", "Edit schedule"),
            ("try", "Try step by step"),
            ("toggle", "Disable" if portal.enabled else "Enable"),
            ("session", "Import session…"),
            ("forget", "Forget session"),
            ("remove", "Remove"),
        ]
        ids = [key for key, _ in actions] + [portal.read_only or ""]
        if ids != self._actions:
            options = self.query_one("#action-list", OptionList)
            highlighted = options.highlighted
            options.clear_options()
            options.add_options([_option(key, label, portal.read_only) for key, label in actions])
            options.highlighted = min(highlighted or 0, len(actions) - 1)
            self._actions = ids

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        getattr(self, f"_do_{event.option.id}")()

    def action_close(self) -> None:
        close(self)

    # -- the actions -----------------------------------------------------------------------

    def _do_fetch(self) -> None:
        portal = self.model.portals[self.portal]
        if portal.enabled and quiet_now(portal.next_reason):
            question = (
                f"{self.portal} is in its quiet hours ({portal.next_reason}).\n"
                "The portal may send you a code now. Start the download anyway?"
            )
            self.app.push_screen(
                Confirm(question, yes="Start", title="Quiet hours"),
                lambda yes: self._call("fetch") if yes else None,
            )
        else:
            self._call("fetch")

    def _do_code(self) -> None:
        self.app.action_codes(self.portal)  # type: ignore[attr-defined]

    def _do_test(self) -> None:
        self.notify(f"{self.portal}: testing the login…")
        self._call("test")

    def _do_try(self) -> None:
        self.app.push_screen(TryScreen(self.portal))

    def _do_login(self) -> None:
        current = self.model.portals[self.portal].username
        self.app.push_screen(
            LoginForm(self.portal, current),
            lambda login: self._call("login", login) if login else None,
        )

    def _do_schedule(self) -> None:
        current = self.model.portals[self.portal].schedule
        self.app.push_screen(
            ScheduleForm(self.portal, current or None),
            lambda schedule: self._call("schedule", schedule) if schedule is not None else None,
        )

    def _do_toggle(self) -> None:
        self._call("toggle", not self.model.portals[self.portal].enabled)

    def _do_session(self) -> None:
        self.app.push_screen(
            AskPath(f"Import a session into {self.portal}", SESSION_HELP, yes="Import"),
            lambda path: self._call("session", path) if path else None,
        )

    def _do_forget(self) -> None:
        question = f"Forget the saved session of {self.portal}? Its next run logs in again."
        self.app.push_screen(
            Confirm(question, yes="Forget", title="Forget the session"),
            lambda yes: self._call("forget") if yes else None,
        )

    def _do_remove(self) -> None:
        question = (
            f"Remove {self.portal}? Its entry in portals.d, its stored password and its "
            "session go; the documents already in the archive stay."
        )
        self.app.push_screen(
            Confirm(question, yes="Remove", title=f"Remove {self.portal}"),
            lambda yes: self._call("remove") if yes else None,
        )

    @work(group="portal-action", exit_on_error=False)
    async def _call(self, action: str, value: Any = None) -> None:
        """Do one action over the socket and post how it went."""
        name = self.portal
        try:
            text = await self._send(action, value)
        except link.Unsupported as e:
            self.post_message(Done(str(e), ok=False, action=action))
        except link.ControlError as e:
            self.post_message(Done(f"{name}: {link.explain(e)}", ok=False, action=action))
        except (link.DaemonNotRunning, link.CookieFileError) as e:
            self.post_message(Done(f"{name}: {e}", ok=False, action=action))
        else:
            self.post_message(Done(text, action=action))

    async def _send(self, action: str, value: Any) -> str:
        """One action's request; what to tell the user when it was done."""
        client, name = self.app.client, self.portal  # type: ignore[attr-defined]
        if action == "fetch":
            if client is None:
                raise link.DaemonNotRunning("not connected to the daemon")
            await client.fetch(name)
            return f"{name}: download started"
        elif action == "test":
            result = await link.optional(client, "test_login", "a test login", name)
            return f"{name}: test login: {describe_result(result)}"
        elif action == "login":
            username, password = value
            await link.optional(
                client,
                "update_portal",
                "changing a login",
                name,
                username=username,
                password=password,
            )
            return f"{name}: login changed; the next run logs in with it"
        elif action == "schedule":
            # An empty form: the portal follows the global schedule again.
            await link.optional(
                client, "update_portal", "changing a schedule", name, schedule=value or None
            )
            return f"{name}: schedule saved" if value else f"{name}: the global schedule applies"
        elif action == "toggle":
            what = "enabling a portal" if value else "disabling a portal"
            await link.optional(client, "update_portal", what, name, enabled=value)
            return f"{name}: {'enabled' if value else 'disabled'}"
        elif action == "session":
            result = await link.optional(
                client, "import_session_file", "importing a session", name, value
            )
            return f"{name}: {session_imported(result)}"
        elif action == "forget":
            result = await link.optional(client, "clear_session", "forgetting a session", name)
            said = "session forgotten" if result.cleared else "there was no session"
            return f"{name}: {said}"
        else:
            await link.optional(
                client, "remove_portal", "removing a portal", name, delete_secrets=True
            )
            return f"{name}: removed"

    def on_done(self, message: Done) -> None:
        self.notify(message.text, severity="information" if message.ok else "error")
        if message.ok and message.action in ("login", "schedule", "toggle"):
            self.app.refresh_status()  # type: ignore[attr-defined]
        if message.ok and message.action == "remove":
            close(self)


class CompanyDialog(ModalScreen[None]):
    """A company without portal: its documents come by e-mail."""

    BINDINGS = [Binding("escape", "close", "Close")]  # noqa: RUF012

    def __init__(self, name: str):
        super().__init__()
        self.company = name

    def compose(self) -> ComposeResult:
        model: Model = self.app.model  # type: ignore[attr-defined]
        n = (model.company_docs or {}).get(self.company, 0)
        last = model.company_last.get(self.company)
        text = f"A company without portal: its documents come by e-mail.\n{n:,} documents"
        if last:
            text += f", the last received {fmt.long_time(last, model.tz)}"
        with Vertical(classes="dialog"):
            yield Label(self.company, classes="dialog-title")
            yield Static(text)
            yield OptionList(Option("Show its documents", id="documents"), id="action-list")
            yield Static("Enter do it · Esc close", classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        close(self)
        self.app.show_documents(company=self.company)  # type: ignore[attr-defined]

    def action_close(self) -> None:
        close(self)
