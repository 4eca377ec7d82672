"""The code prompt: pops up wherever the user is when a portal asks for a code or a captcha."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from gmid.control import protocol as p
from tui import format as fmt
from tui import link
from tui.dialogs.common import close
from tui.image import image_widget
from tui.messages import Done
from tui.model import Pending

MEDIA = {
    "sms": "sent by SMS",
    "email": "sent by e-mail",
    "app": "from your authenticator app",
}


def heading(info: p.ChallengeInfo) -> str:
    """The prompt's title: "energie asks for a code"."""
    what = {
        "captcha": "the captcha's text",
        "token": "a captcha token",
        "approval": "an approval",
    }.get(info.kind, "a code")
    return f"{info.portal} asks for {what}"


class CodePrompt(ModalScreen[str]):
    """One pending challenge. Dismissed with "answered", "later" (Escape) or "gone"."""

    BINDINGS = [Binding("escape", "later", "Later")]  # noqa: RUF012

    def __init__(self, pending: Pending):
        super().__init__()
        self.pending = pending
        self.submitted = False  # an answer went out from here (not "answered elsewhere")

    def compose(self) -> ComposeResult:
        info = self.pending.info
        with Vertical(classes="dialog prompt"):
            yield Label(heading(info), classes="dialog-title")
            yield Static(info.prompt or "", id="prompt-text")
            yield Static(id="meta")
            if info.retry_message:
                yield Static(
                    Text.assemble("The portal said: ", (f"«{info.retry_message}»", "bold")),
                    id="retry",
                )
            if info.kind == "captcha":
                widget = image_widget(info.image_path)
                if widget is not None:
                    yield widget
                yield Static(
                    Text.assemble("image: ", (info.image_path or "(none)", "bold")), id="image-path"
                )
            if info.kind == "token":
                yield Static(_steps(info), id="token-steps")
            placeholder = {
                "approval": "approve in your app, then Enter (or type cancel)",
                "captcha": "the text in the image",
                "token": "paste the token",
            }.get(info.kind, "the code")
            yield Input(placeholder=placeholder, id="answer")
            yield Static(id="error")
            yield Static("Enter send · Esc later (c brings it back)", classes="hint")

    def on_mount(self) -> None:
        self._tick()
        self.set_interval(1, self._tick)
        self.set_focus(self.query_one("#answer", Input))

    def _tick(self) -> None:
        info = self.pending.info
        medium = MEDIA.get(info.medium, "")
        left = fmt.seconds_left(self.pending.left())
        line = Text()
        if medium:
            line.append(f"{medium} · ")
        line.append(f"{left} left" if left != "expired" else left, style="bold")
        self.query_one("#meta", Static).update(line)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        answer = event.value.strip()
        if not answer:
            if self.pending.info.kind != "approval":
                self._error("type the code first (Esc puts it off)")
                return
            answer = "check"  # anything but "cancel" makes the daemon look again at once
        self.submitted = True
        self._send(answer)

    @work(group="answer", exclusive=True, exit_on_error=False)
    async def _send(self, answer: str) -> None:
        """Give the answer to the daemon."""
        client = self.app.client  # type: ignore[attr-defined]
        info = self.pending.info
        try:
            if client is None:
                raise link.DaemonNotRunning("not connected to the daemon")
            await client.answer(info.id, answer)
        except link.ControlError as e:
            gone = e.code == p.NOT_FOUND
            self.post_message(Done(str(e), ok=False, action="gone" if gone else "answer"))
        except link.DaemonNotRunning as e:
            self.post_message(Done(str(e), ok=False, action="answer"))
        else:
            self.post_message(Done(f"{info.portal}: {info.kind} sent", action="answer"))

    def on_done(self, message: Done) -> None:
        if message.ok:
            self.notify(message.text)
            close(self, "answered")
        elif message.action == "gone":
            self.notify(f"{self.pending.info.portal}: {message.text}", severity="warning")
            close(self, "gone")
        else:
            self.submitted = False
            self._error(message.text)

    def _error(self, text: str) -> None:
        self.query_one("#error", Static).update(Text(text, style="red"))

    def action_later(self) -> None:
        close(self, "later")


def _steps(info: p.ChallengeInfo) -> Text:
    """How to get a widget's token by hand, the page's address and the console line in bold."""
    text = Text()
    for i, line in enumerate(info.token_steps()):
        if i:
            text.append("\n")
        if info.page_url and info.page_url in line:
            before, _, after = line.partition(info.page_url)
            text.append(before)
            text.append(info.page_url, style="bold")
            text.append(after)
        else:
            text.append(line, style="bold" if line.startswith("  ") else "")
    return text
