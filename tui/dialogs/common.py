"""Small modal dialogs: a yes/no question, the schedule form of a portal, a file to read."""

from __future__ import annotations

from typing import Any, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static


def close(screen: Screen, result: Any = None) -> None:
    """Dismiss a screen if it is the one on top (Screen.dismiss pops whatever is), once."""
    if screen.is_active:
        screen.dismiss(result)


class Confirm(ModalScreen[bool]):
    """Ask a yes/no question; Escape and n say no."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, question: str, yes: str = "Yes", title: str = "Are you sure?"):
        super().__init__()
        self.question = question
        self.yes = yes
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog small"):
            yield Label(self.heading, classes="dialog-title")
            yield Static(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#no", Button))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        close(self, event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        close(self, yes)


SCHEDULE_FIELDS = (
    ("every", "Every", "7d", "how often: 7d, 2w, 12h (ignored with fixed times)"),
    ("at", "At", "tue 09:30, fri 08:00", "fixed times instead, comma-separated"),
    ("windows", "Windows", "mon-fri 08:00-19:00", "runs only start inside these"),
    ("quiet", "Quiet", "sat-sun, 2026-12-24..2027-01-01", "never then; wins over windows"),
)
LISTS = ("at", "windows", "quiet")


def schedule_from_inputs(values: dict[str, str]) -> dict[str, Any]:
    """The schedule the daemon takes, from the form's texts; empty fields are left out."""
    schedule: dict[str, Any] = {}
    for key, text in values.items():
        text = text.strip()
        if not text:
            continue
        if key in LISTS:
            schedule[key] = [part.strip() for part in text.split(",") if part.strip()]
        else:
            schedule[key] = text
    return schedule


def schedule_to_inputs(schedule: dict[str, Any] | None) -> dict[str, str]:
    """The form's texts for a schedule the daemon reported (if it reports one)."""
    out = {}
    for key, *_ in SCHEDULE_FIELDS:
        value = (schedule or {}).get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        out[key] = "" if value is None else str(value)
    return out


T = TypeVar("T")


class FormDialog(ModalScreen[T]):
    """A dialog of inputs: Enter or its first button submits them, Cancel or Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            close(self)
        else:
            self.submit()

    def action_cancel(self) -> None:
        close(self)

    def submit(self) -> None:
        """Close with what the inputs say, or tell what is missing."""
        raise NotImplementedError


class ScheduleForm(FormDialog[dict[str, Any] | None]):
    """Edit when a portal is fetched: every / at / windows / quiet."""

    def __init__(self, portal: str, schedule: dict[str, Any] | None = None):
        super().__init__()
        self.portal = portal
        self.values = schedule_to_inputs(schedule)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"When to fetch {self.portal}", classes="dialog-title")
            for key, label, example, hint in SCHEDULE_FIELDS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield Input(self.values[key], placeholder=example, id=f"sched-{key}")
                yield Static(hint, classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def submit(self) -> None:
        values = {key: self.query_one(f"#sched-{key}", Input).value for key, *_ in SCHEDULE_FIELDS}
        close(self, schedule_from_inputs(values))


class AskPath(FormDialog[str | None]):
    """Ask for a file's path, with a word on what the file must be; Escape cancels."""

    def __init__(self, title: str, explanation: str, *, label: str = "File", yes: str = "OK"):
        super().__init__()
        self.heading = title
        self.explanation = explanation
        self.label = label
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.heading, classes="dialog-title")
            yield Static(self.explanation, classes="question")
            with Horizontal(classes="field"):
                yield Label(self.label, classes="field-label")
                yield Input(placeholder="~/Downloads/cookies.txt", id="path")
            with Horizontal(classes="buttons"):
                yield Button(self.yes, id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#path", Input))

    def submit(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if path:
            close(self, path)
        else:
            self.notify("give the file's path", severity="warning")


class LoginForm(FormDialog[tuple[str, str] | None]):
    """Ask for a portal's new user name and password (masked); Escape cancels."""

    def __init__(self, portal: str, username: str | None = None):
        super().__init__()
        self.portal = portal
        self.username = username or ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog small"):
            yield Label(f"Change the login of {self.portal}", classes="dialog-title")
            yield Static(
                "The password goes to the daemon's secret store (a file only you can read); "
                "the next run logs in with these.",
                classes="question",
            )
            with Horizontal(classes="field"):
                yield Label("User name", classes="field-label")
                yield Input(self.username, id="login-user")
            with Horizontal(classes="field"):
                yield Label("Password", classes="field-label")
                yield Input(password=True, id="login-password")
            with Horizontal(classes="buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        first = "#login-password" if self.username else "#login-user"
        self.set_focus(self.query_one(first, Input))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "login-user":
            self.set_focus(self.query_one("#login-password", Input))
        else:
            self.submit()

    def submit(self) -> None:
        username = self.query_one("#login-user", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        given = (("user name", username), ("password", password))
        missing = [what for what, value in given if not value]
        if missing:
            self.notify(f"missing: {', '.join(missing)}", severity="error")
            return
        close(self, (username, password))
