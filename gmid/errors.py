"""One hierarchy of errors; the user-facing ones print without a traceback."""

from __future__ import annotations

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

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.option}: {self.message}" if self.option else f"{where}: {self.message}"
        )


class ConfigError(GmidError):
    """The config cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SecretError(GmidError):
    """A secret reference could not be resolved (the message never contains the secret)."""


class ArchiveError(GmidError):
    """A document could not be written to the archive."""


class ControlError(GmidError):
    """The control socket answered with an error."""

    def __init__(self, code: int, message: str, data: object = None):
        self.code = code
        self.data = data
        super().__init__(message)


class DaemonNotRunning(GmidError):
    """No daemon listens on the control socket."""

    exit_code = 3
