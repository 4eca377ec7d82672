"""What every connector implements, and what the runner hands it.

A connector logs into one kind of portal, lists its documents and downloads them. It runs in a
worker thread and may block: when the portal asks for a one-time code or shows a captcha (an
image, or a widget such as reCAPTCHA whose answer is a token), it calls `ctx.ask(...)`, which
waits for the user (or answers from a stored TOTP secret, or the captcha solver command).
Errors are the typed ones of gmid.errors, which say what the user must do: WrongCredentials,
PortalChanged (with the failed selector and the saved page), PortalUnavailable, SessionExpired...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from gmid.errors import SecretError

if TYPE_CHECKING:  # the daemon starts without it; the runner imports it with the first run
    import mechanicalsoup


@dataclass(frozen=True)
class RemoteDocument:
    """A document as a portal lists it; `id` is the portal's own (default: the download URL)."""

    id: str
    url: str
    date: date | None = None
    number: str | None = None
    amount: str | None = None  # a plain decimal string, "1234.50", whatever the portal wrote
    title: str | None = None
    method: str = "GET"  # "POST" for portals that download through a form
    form: tuple[tuple[str, str], ...] = ()  # the POST fields


@dataclass(frozen=True)
class CodeRequest:
    """The portal asks for a one-time code."""

    prompt: str
    medium: str = "unknown"  # sms | email | app | unknown
    retry_message: str | None = None  # the portal's words about the previous, refused code


@dataclass(frozen=True)
class CaptchaRequest:
    """The portal shows a captcha image to type."""

    image: bytes = field(repr=False)
    media_type: str
    prompt: str = "Type the characters in the image"
    retry_message: str | None = None


# The captcha widgets a login may carry, and the form field each one's script fills.
WIDGETS = {
    "recaptcha": ("reCAPTCHA", "g-recaptcha-response"),
    "hcaptcha": ("hCaptcha", "h-captcha-response"),
    "turnstile": ("Cloudflare Turnstile", "cf-turnstile-response"),
}


@dataclass(frozen=True)
class TokenRequest:
    """The portal guards its form with a captcha widget (reCAPTCHA, hCaptcha, Turnstile).

    Its answer is the token the widget's script would have put in the form after the check was
    passed in a browser: from the solver command, or pasted by the user.
    """

    widget: str  # a key of WIDGETS
    site_key: str
    page_url: str  # the page showing the widget, without its query
    prompt: str = ""
    retry_message: str | None = None  # the portal's words about the previous, refused token
    invisible: bool = False  # an "invisible" reCAPTCHA: solving services want to know

    def __post_init__(self) -> None:
        if not self.prompt:
            name = WIDGETS[self.widget][0]
            prompt = f"Solve the {name} check of the login page in a browser and paste its token"
            object.__setattr__(self, "prompt", prompt)

    @property
    def field(self) -> str:
        """The field the widget's script fills in the browser: where the user copies from."""
        return WIDGETS[self.widget][1]


@dataclass(frozen=True)
class ApprovalRequest:
    """The portal waits for the user to confirm the login in an app; the connector polls."""

    prompt: str


class Trace:
    """Where a connector tells its steps while a trial (`gmid try`) watches: the requests, what
    each selector or path matched, the rows read. A run's listens to nothing: with `active`
    False a connector spends nothing on it (connectors/form/trace.py says what is told)."""

    active: bool = False

    def step(self, kind: str, **facts: Any) -> None:
        """Note one step: a "request", a "match" of a selector or path, a "note"."""


@dataclass
class PortalContext:
    """Everything a connector may use; built by the runner (or by a test)."""

    portal: str
    username: str
    password: Callable[[], str] = field(repr=False)
    browser: mechanicalsoup.StatefulBrowser
    ask: Callable[[CodeRequest | CaptchaRequest | TokenRequest], str]
    """Block until the user (or a TOTP secret, or the captcha solver) answers; raises
    ChallengeExpired."""
    wait_approval: Callable[[ApprovalRequest, Callable[[], bool]], None]
    """Show the prompt and call the poll function until it returns True; raises ChallengeExpired."""
    save_page: Callable[[str, bytes], Path]
    """Keep a page for diagnosis under the state dir; returns its path."""
    read_body: Callable[[Any], bytes]
    """Read a streamed response of `browser.session` whole, under the run's download cap;
    raises DownloadRejected over the cap, PortalUnavailable when the transfer breaks off."""
    progress: Callable[[str], None] = lambda message: None
    options: Mapping[str, Any] = field(default_factory=dict)
    """The connector's own options from the config (for `form`: the portal description)."""
    secret: Callable[[str], str] = field(default=lambda path: _no_secret(path), repr=False)
    """The secret an option holds (one of `Connector.secret_options`), resolved now and known
    to the run as a secret; raises SecretError (which names the reference, not the value)."""
    learn_secret: Callable[[str], None] = lambda value: None
    """Tell the run that a value is a secret (a token the portal handed out): it is blanked
    from then on in logs, saved pages and messages, as the password is."""
    known: Callable[[str], bool] = lambda ref: False
    """Whether the runner has filed the document of this id (and still has its file), so that
    a connector can spare the portal requests for it (a detail page); an id ending in "/"
    asks whether any document whose id starts with it is."""
    trace: Trace = field(default_factory=Trace)
    """Told each step by a trial (`gmid try`); a run's tells nobody."""


def _no_secret(path: str) -> str:
    raise SecretError(f"option {path}: no secret was given to the connector")


class Connector(ABC):
    """One kind of portal. The runner calls login (unless the session is still valid),
    then iterates documents(), skipping ids it has, and downloads the rest."""

    name: ClassVar[str]

    def __init__(self, ctx: PortalContext):
        self.ctx = ctx

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Return the problems of the config options as (option path, message) pairs."""
        return []

    @classmethod
    def secret_options(cls, options: Mapping[str, Any]) -> list[str]:
        """The option paths (`headers.X-Api-Key.secret`) that hold secret references, written
        as the portal's `password:` is ({env: VAR}, {file: ...}...); the config reads them and
        the connector gets their values through `ctx.secret(path)`."""
        return []

    def session_valid(self) -> bool:
        """Tell whether the saved cookies still give a logged-in session (no login needed)."""
        return False

    @abstractmethod
    def login(self) -> None:
        """Log in, asking for codes or captchas through ctx.ask when the portal wants them."""

    @abstractmethod
    def documents(self) -> Iterator[RemoteDocument]:
        """Yield the documents the portal lists, newest first where the portal says so."""

    def download(self, doc: RemoteDocument) -> tuple[bytes, str | None]:
        """Return the document's bytes and the Content-Type the portal gave.

        The runner caps the size and checks the type; a connector overrides this only when a
        plain GET or POST of doc.url is not how the portal hands out its files.
        """
        session = self.ctx.browser.session
        if doc.method == "POST":
            response = session.post(doc.url, data=list(doc.form), stream=True)
        else:
            response = session.get(doc.url, stream=True)
        return self.ctx.read_body(response), response.headers.get("Content-Type")
