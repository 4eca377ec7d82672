"""Adding to "Companies & Portals": an online portal, a company, or a suggestion of a new portal.

The daemon writes what is added into portals.d/ (never the user's config.yaml) and keeps the
password in its secret store, unless the user insists on plain text in the YAML.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    ContentSwitcher,
    Footer,
    Input,
    Label,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option

from gmid.control import protocol as p
from tui import link
from tui.dialogs.common import SCHEDULE_FIELDS, close, schedule_from_inputs
from tui.messages import ConnectorsLoaded, Done
from tui.screens.page import TitleBar

KINDS = (
    ("portal", "Online portal", "gmid logs in and downloads the documents"),
    ("company", "Company", "a supplier without portal: its documents come by e-mail"),
    ("suggest", "Suggest a portal", "one gmid does not know yet: from its URL"),
)
# A test login's outcomes when the password was accepted and a second step follows.
SECOND_STEP = {"asks for a code": "the code", "asks for an approval": "the approval"}
PLAIN_WARNING = (
    "The password will be readable by anyone who can read portals.d/. "
    "Without this box the daemon keeps it in its secret store."
)


def connector_entries(found: p.Connectors) -> list[dict[str, str]]:
    """What `connectors.list` offers, as {id, name, description, company}: the form descriptions
    first (most portals need no code), then the Python connectors."""
    entries = []
    for form in found.forms:
        if form.name:
            entries.append(
                {
                    "id": f"form:{form.name}",
                    "name": form.name,
                    "description": form.description or "form description",
                    "company": form.company or "",
                }
            )
    for name in found.connectors:
        if name != "form":  # the form connector needs a description
            entries.append(
                {
                    "id": f"connector:{name}",
                    "name": name,
                    "description": "Python connector",
                    "company": "",
                }
            )
    return entries


def matches(entry: dict[str, str], search: str) -> bool:
    """Whether a connector matches the search text (every word, anywhere, any case)."""
    haystack = f"{entry['name']} {entry['description']}".casefold()
    return all(word in haystack for word in search.casefold().split())


def field(label: str, widget_id: str, placeholder: str = "", password: bool = False) -> Horizontal:
    """A labelled input on one line."""
    return Horizontal(
        Label(label, classes="field-label"),
        Input(placeholder=placeholder, password=password, id=widget_id),
        classes="field",
    )


class AddScreen(Screen):
    """Add an online portal or a company, or suggest a portal."""

    BINDINGS = [Binding("escape", "back", "Back")]  # noqa: RUF012

    def __init__(self) -> None:
        super().__init__()
        self.connectors: list[dict[str, str]] = []

    def compose(self) -> ComposeResult:
        yield TitleBar("Add a portal or a company")
        with ContentSwitcher(initial="kind"):
            with Vertical(id="kind"):
                yield Label("What do you want to add?", classes="dialog-title")
                yield OptionList(
                    *[Option(Text.assemble((t, "bold"), f"\n  {d}"), id=k) for k, t, d in KINDS],
                    id="kind-list",
                )
            with VerticalScroll(id="portal-form"):
                yield Label("Connector or form description", classes="section")
                yield Input(placeholder="search", id="connector-search")
                yield OptionList(id="connector-list")
                yield field("Name", "p-name", "a short name, e.g. stadtwerke")
                yield field("Company", "p-company", "who sends the invoices")
                yield field("User name", "p-user")
                yield field("Password", "p-password", password=True)
                yield Label("When to fetch (empty: every 7 days)", classes="section")
                for key, label, example, _ in SCHEDULE_FIELDS:
                    yield field(label, f"p-{key}", example)
                yield Checkbox("Store the password as plain text in the YAML", id="p-plain")
                yield Static(PLAIN_WARNING, id="plain-warning", classes="warning")
                with Horizontal(id="portal-buttons"):
                    yield Button("Test login", id="test-portal")
                    yield Button("Add portal", id="add-portal", variant="primary")
                yield Static(id="test-result")
            with VerticalScroll(id="company-form"):
                yield Label("A company whose documents come by e-mail", classes="section")
                yield field("Name", "c-name", "e.g. Stadtwerke")
                yield field("Senders", "c-senders", "rechnung@x.example, @y.example")
                yield Static("addresses or @domains, comma-separated", classes="hint")
                yield Button("Add company", id="add-company", variant="primary")
            with VerticalScroll(id="suggest-form"):
                yield Label("Suggest a portal gmid does not know yet", classes="section")
                yield field("URL", "s-url", "https://portal.example/login")
                yield field("Domain", "s-domain", "optional: the URL's host")
                yield Button("Suggest", id="suggest", variant="primary")
                yield Static(id="suggest-result")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#plain-warning").display = False
        self.set_focus(self.query_one("#kind-list"))

    def action_back(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "kind":
            close(self)
        else:
            switcher.current = "kind"
            self.set_focus(self.query_one("#kind-list"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "kind-list":
            kind = event.option.id
            self.query_one(ContentSwitcher).current = f"{kind}-form"
            first = {"portal": "#connector-search", "company": "#c-name", "suggest": "#s-url"}
            self.set_focus(self.query_one(first[kind or "portal"]))
            if kind == "portal" and not self.connectors:
                self.load_connectors()
        elif event.option_list.id == "connector-list":
            self._prefill(event.option.id or "")
            self.set_focus(self.query_one("#p-name"))

    def _prefill(self, option_id: str) -> None:
        """Take a form description's name and company as the defaults for the new portal."""
        entry = next((e for e in self.connectors if e["id"] == option_id), None)
        if entry is None:
            return
        for widget_id, value in (("p-name", entry["name"]), ("p-company", entry["company"])):
            widget = self.query_one(f"#{widget_id}", Input)
            if value and not widget.value:
                widget.value = value

    # -- the connectors list ---------------------------------------------------------------

    @work(group="connectors", exclusive=True, exit_on_error=False)
    async def load_connectors(self) -> None:
        """Ask the daemon which connectors and form descriptions it has."""
        client = self.app.client  # type: ignore[attr-defined]
        if client is None:
            return  # the down screen says why
        try:
            found = await link.optional(client, "connectors", "listing the connectors")
        except (link.Unsupported, link.ControlError, link.DaemonNotRunning) as e:
            self.post_message(Done(str(e), ok=False, action="connectors"))
            return
        self.post_message(ConnectorsLoaded(connector_entries(found)))

    def on_connectors_loaded(self, message: ConnectorsLoaded) -> None:
        self.connectors = message.connectors
        self._show_connectors()

    def _show_connectors(self) -> None:
        search = self.query_one("#connector-search", Input).value
        options = self.query_one("#connector-list", OptionList)
        options.clear_options()
        for entry in self.connectors:
            if matches(entry, search):
                label = Text.assemble((entry["name"], "bold"), f"  {entry['description']}")
                options.add_option(Option(label, id=entry["id"]))
        if options.option_count:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "connector-search":
            self._show_connectors()
        elif event.input.id in ("p-user", "p-password"):
            self.query_one("#test-result", Static).update("")  # said of another login

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "connector-search":
            self.set_focus(self.query_one("#connector-list"))
        else:
            self.focus_next()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.query_one("#plain-warning").display = event.value

    # -- submitting ------------------------------------------------------------------------

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add-portal":
            self._submit_portal()
        elif event.button.id == "test-portal":
            self._test_portal()
        elif event.button.id == "add-company":
            name = self._value("c-name")
            senders = [s.strip() for s in self._value("c-senders").split(",") if s.strip()]
            if not name:
                self.notify("a company needs a name", severity="error")
                return
            self._call("company", {"name": name, "senders": senders})
        elif event.button.id == "suggest":
            url = self._value("s-url")
            if not url:
                self.notify("the portal's URL, please", severity="error")
                return
            self.query_one("#suggest-result", Static).update("looking at the page…")
            self._call("suggest", {"url": url, "domain": self._value("s-domain") or None})

    def _submit_portal(self) -> None:
        fields = self._portal_fields()
        if fields is None:
            return
        schedule = schedule_from_inputs(
            {key: self._value(f"p-{key}") for key, *_ in SCHEDULE_FIELDS}
        )
        fields["schedule"] = schedule or None
        fields["plain_text"] = self.query_one("#p-plain", Checkbox).value
        self._call("portal", fields)

    def _test_portal(self) -> None:
        fields = self._portal_fields()
        if fields is None:
            return
        self.query_one("#test-result", Static).update("testing the login…")
        self._call("test", fields)

    def _portal_fields(self) -> dict[str, Any] | None:
        """What the portal form says, as `add_portal` takes it; None (and why) if incomplete."""
        options = self.query_one("#connector-list", OptionList)
        option = options.highlighted_option if options.highlighted is not None else None
        kind, _, what = (option.id or "").partition(":") if option else ("", "", "")
        fields: dict[str, Any] = {
            "name": self._value("p-name"),
            "company": self._value("p-company") or None,
            "username": self._value("p-user"),
            "password": self.query_one("#p-password", Input).value,
        }
        missing = [k for k in ("name", "username", "password") if not fields[k]]
        if not what:
            missing.insert(0, "a connector or form (pick one in the list)")
        if missing:
            self.notify(f"missing: {', '.join(missing)}", severity="error")
            return None
        fields["form" if kind == "form" else "connector"] = what
        return fields

    @work(group="add", exclusive=True, exit_on_error=False)
    async def _call(self, kind: str, fields: dict[str, Any]) -> None:
        """Send what the user entered to the daemon, and post how it went."""
        client = self.app.client  # type: ignore[attr-defined]
        try:
            if kind == "test":
                result = await link.optional(
                    client, "test_new_portal", "a test login before adding", **fields
                )
                text = tried(result)
            elif kind == "portal":
                fields = dict(fields)
                name = fields.pop("name")
                result = await link.optional(
                    client, "add_portal", "adding a portal", name, **fields
                )
                fields["name"] = name
                text = f"portal {fields['name']} added"
            elif kind == "company":
                result = await link.optional(client, "add_company", "adding a company", **fields)
                text = f"company {fields['name']} added"
            else:
                if client is None:
                    raise link.DaemonNotRunning("not connected to the daemon")
                result = await client.suggest(fields["url"], fields["domain"])
                text = f"draft written to {result.draft}"
        except link.Unsupported as e:
            self.post_message(Done(str(e), ok=False, action=kind))
        except link.ControlError as e:
            self.post_message(Done(link.explain(e), ok=False, action=kind))
        except link.DaemonNotRunning as e:
            self.post_message(Done(str(e), ok=False, action=kind))
        else:
            path = result.file if isinstance(result, p.Change) else None
            text += f": {path}" if path else ""
            self.post_message(Done(text, action=kind, result=result))

    def on_done(self, message: Done) -> None:
        if message.action == "test":
            outcome = message.result.outcome if isinstance(message.result, p.RunInfo) else ""
            style = "green" if outcome == "ok" else "yellow" if outcome in SECOND_STEP else "red"
            result = self.query_one("#test-result", Static)
            result.update(Text(message.text, style=style))
            result.scroll_visible()
            return
        if message.action == "suggest" and message.ok:
            self.query_one("#suggest-result", Static).update(suggestion(message.result))
            self.app.refresh_status()  # type: ignore[attr-defined]
            return
        self.notify(message.text, severity="information" if message.ok else "error")
        warnings = message.result.warnings if isinstance(message.result, p.Change) else []
        for warning in warnings if message.ok else []:
            self.notify(warning, severity="warning", timeout=10)
        if message.ok and message.action in ("portal", "company"):
            self.app.refresh_status()  # type: ignore[attr-defined]
            close(self)


def tried(result: p.RunInfo) -> str:
    """What a test login before adding found: it works, the portal's words, or a code step."""
    if result.outcome == "ok":
        return "login works: the portal accepted the user name and password"
    if result.outcome in SECOND_STEP and result.message:
        return f"login works up to {SECOND_STEP[result.outcome]}: {result.message}"
    text = f"{result.outcome}: {result.message}" if result.message else result.outcome
    if result.portal_message:
        text += f"\nthe portal said: «{result.portal_message}»"
    return text


def suggestion(result: p.Suggestion) -> Text:
    """What `suggest` found and wrote, and what is left for the user to fill in."""
    text = Text()
    if not result.form_found:
        text.append(f"No login form found at {result.login_url}.\n", style="yellow")
    text.append("Draft written to ")
    text.append(result.draft, style="bold")
    text.append(" (disabled).\n")
    if result.note:
        text.append(f"{result.note}\n", style="dim")
    if result.todo:
        text.append("Left to fill in:\n")
        for item in result.todo:
            text.append(f"  • {item}\n")
    name = result.name or "NAME"
    text.append(f"Then start it from its row, or `gmid fetch {name} --wait`.", style="dim")
    return text
