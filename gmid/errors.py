"""One hierarchy of errors; the user-facing ones print without a traceback.

Every exception gmid raises of its own derives from GmidError. Those shared by several modules
are here; one that a single module raises and its callers catch lives in that module (WireError
in gmid/mail/imap/wire.py, ChangeRefused in gmid/config/edit.py).
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass


class GmidError(Exception):
    """Base of every error gmid reports to the user."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    line: int | None
    option: str
    message: str
    excerpt: str = ""  # lines that show the spot (a YAML syntax error's line and caret)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = (
            f"{where}: {self.option}: {self.message}" if self.option else f"{where}: {self.message}"
        )
        return f"{text}\n{self.excerpt}" if self.excerpt else text


# Short enough to read, and cheap even for a YAML alias bomb (a list of lists of lists...).
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother, _QUOTE.maxlong = 2, 80, 80, 40
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 4


def quoted(value: object) -> str:
    """Return value as repr() would, cut to a readable length, for an error message."""
    return _QUOTE.repr(value)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest choice, or the list of choices, to end a
    message about an unknown option or value."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


class ConfigError(GmidError):
    """The config cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SecretError(GmidError):
    """A secret reference could not be resolved (the message never contains the secret)."""


class ArchiveError(GmidError):
    """A document could not be written to the archive (or a mail to the quarantine)."""


class IndexDbError(GmidError):
    """The archive's index, its SQLite database, could not be opened, read or written."""


class ControlError(GmidError):
    """The control socket answered with an error."""

    def __init__(self, code: int, message: str, data: object = None):
        self.code = code
        self.data = data
        super().__init__(message)


class DaemonNotRunning(GmidError):
    """No daemon listens on the control socket."""

    exit_code = 3


class PortalError(GmidError):
    """A portal run ended without its documents; `outcome` says what the user must do.

    `portal_message` carries the portal's own words (its error text), when it gave any.
    """

    outcome = "error"

    def __init__(self, message: str, *, portal_message: str | None = None):
        super().__init__(message)
        self.portal_message = portal_message


class WrongCredentials(PortalError):
    """The portal refused the user name or password: do not retry until the config changes."""

    outcome = "wrong credentials"


class PortalChanged(PortalError):
    """The page did not look as described: a selector matched nothing. The page is saved."""

    outcome = "portal changed"

    def __init__(
        self,
        message: str,
        *,
        selector: str | None = None,
        page: str | None = None,
        portal_message: str | None = None,
    ):
        super().__init__(message, portal_message=portal_message)
        self.selector = selector
        self.page = page  # where the page was saved for diagnosis


class PortalUnavailable(PortalError):
    """The portal is down, overloaded or unreachable: retry later (after `retry_after` s)."""

    outcome = "unavailable"

    def __init__(
        self, message: str, *, retry_after: float | None = None, portal_message: str | None = None
    ):
        super().__init__(message, portal_message=portal_message)
        self.retry_after = retry_after


class InsecureTransport(PortalError):
    """Plain http to a non-loopback host, or a redirect from https to http: nothing was sent."""

    outcome = "insecure"


class ChallengeExpired(PortalError):
    """Nobody answered the portal's code or captcha in time: the run waits for the user."""

    outcome = "waiting for code"


class CodeRejected(PortalError):
    """The portal kept refusing the codes given, up to the limit of attempts."""

    outcome = "code rejected"


class CaptchaUnsolved(PortalError):
    """The captcha could not be solved (no answer, or every answer refused)."""

    outcome = "captcha unsolved"


class DownloadRejected(PortalError):
    """A download was too large or not of the expected type; nothing was filed."""

    outcome = "error"


class SessionExpired(PortalError):
    """The portal sent us back to its login page mid-run; the runner logs in again once."""

    outcome = "session expired"


class RunTimeout(PortalError):
    """The run took longer than runs.run_timeout and was stopped."""

    outcome = "timed out"


class NotFound(GmidError, LookupError):
    """What a request names does not exist: no such portal, no challenge pending for it."""


class Busy(GmidError):
    """What a request would change is in use: a run of the portal is under way."""
