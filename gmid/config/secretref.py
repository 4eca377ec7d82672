"""References to secrets (passwords, TOTP seeds) and how they are resolved at the moment of use.

The config never holds a secret itself unless the user insists: it says where to get it, with
`{command: "pass show x"}`, `{env: VAR}`, `{file: path}` or `{credential: name}` (systemd
`LoadCredential=`). Messages and reprs name the reference, never the value. Secrets that others
may read (a config file with plain-text ones, a secret file) are warned about here too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode

from gmid import shell
from gmid.config.reader import Reader, is_null
from gmid.errors import Problem, SecretError, quoted

KINDS = ("command", "env", "file", "credential")
COMMAND_TIMEOUT = 30.0

_FORMS = "{command: ...}, {env: ...}, {file: ...}, {credential: ...}"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: a command, an environment variable, a file, a credential."""

    kind: str  # "command" | "env" | "file" | "credential" | "plain"
    value: str  # the command, variable name, path or credential name; for "plain" the secret

    def __repr__(self) -> str:
        shown = "***" if self.kind == "plain" else repr(self.value)
        return f"SecretRef({self.kind}, {shown})"

    def __str__(self) -> str:
        if self.kind == "plain":
            return "plain-text secret ***"
        if self.kind == "command":
            return f"command `{self.value}`"
        return f"{self.kind} {self.value}"

    def resolve(self, timeout: float = COMMAND_TIMEOUT) -> str:
        """Fetch the secret now; SecretError names the reference, never the value."""
        if self.kind == "plain":
            secret = self.value
        elif self.kind == "command":
            secret = self._run(timeout)
        elif self.kind == "env":
            secret = os.environ.get(self.value)
            if secret is None:
                raise SecretError(f"{self} is not set")
        elif self.kind == "file":
            secret = _strip_newline(self._read(Path(self.value)))
        elif self.kind == "credential":
            directory = os.environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise SecretError(
                    f"{self}: $CREDENTIALS_DIRECTORY is not set "
                    "(the systemd unit needs LoadCredential= or SetCredential=)"
                )
            secret = _strip_newline(self._read(Path(directory) / self.value))
        else:
            raise SecretError(f"unknown kind of secret {quoted(self.kind)}")
        if not secret:
            raise SecretError(f"{self} is empty")
        return secret

    def _run(self, timeout: float) -> str:
        """Run the command through the shell and return its output without the final newline."""
        try:
            done = shell.run(self.value, None, timeout)
        except OSError as e:
            raise SecretError(f"{self} could not be started: {e.strerror}") from None
        except shell.CommandTimeout:
            raise SecretError(f"{self} did not finish within {timeout:g} s") from None
        if done.returncode != 0:
            # stdout may already hold the secret; only stderr is shown.
            detail = done.first_error_line()
            raise SecretError(
                f"{self} exited {done.returncode}" + (f": {detail}" if detail else "")
            )
        try:
            return _strip_newline(done.stdout.decode("utf-8"))
        except UnicodeDecodeError:
            raise SecretError(f"{self} printed something that is not UTF-8 text") from None

    def _read(self, path: Path) -> str:
        """Read a secret file; errors name the file, not its content."""
        # A file reference already names its path; a credential's path is worth showing.
        where = "" if self.kind == "file" else f" {path}"
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SecretError(
                f"{self}: content of{where or ' the file'} is not UTF-8 text"
            ) from None
        except OSError as e:
            raise SecretError(f"{self}: cannot read{where}: {e.strerror}") from None


def _strip_newline(text: str) -> str:
    """Drop the one newline that `echo` and editors put at the end, keep other whitespace."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def parse_secret(reader: Reader, node: Node | None, option: str) -> SecretRef | None:
    """Read a secret option: a one-key mapping naming where it is, or (with a warning) plain text.

    Returns None when the option is absent or wrong; the reader has then recorded the problem.
    """
    if is_null(node):
        return None
    if isinstance(node, ScalarNode):
        reader.warn(
            node,
            option,
            f"plain-text secret; better use one of {_FORMS}",
        )
        reader.note_secret(node, option, "plain", None)
        return SecretRef("plain", node.value)
    if not isinstance(node, MappingNode):
        reader.problem(node, option, f"expected a secret: {_FORMS}")
        return None
    found = reader.mapping(node, option, KINDS)
    names = [key.value for key, _ in node.value if isinstance(key, ScalarNode)]
    if any(name not in KINDS for name in names):
        return None  # reader.mapping reported the unknown key with a hint
    if len(found) != 1:
        given = ", ".join(found) if found else "nothing"
        reader.problem(node, option, f"give exactly one of {_FORMS} (got {given})")
        return None
    kind, value_node = next(iter(found.items()))
    sub = f"{option}.{kind}"
    value = reader.text(value_node, sub)
    if value is None or not value.strip():
        reader.problem(value_node, sub, "expected a non-empty value")
        return None
    if kind == "env" and not _ENV_NAME.fullmatch(value):
        reader.problem(value_node, sub, f"{quoted(value)} is not a valid environment variable name")
        return None
    if kind == "credential" and ("/" in value or value in (".", "..")):
        reader.problem(
            value_node, sub, f"{quoted(value)} is not a credential name (no '/' allowed)"
        )
        return None
    if kind == "file":
        path = reader.path(value_node, sub)
        if path is None:
            return None
        reader.note_secret(value_node, sub, "file", path)
        return SecretRef("file", str(path))
    reader.note_secret(value_node, sub, kind, None)
    return SecretRef(kind, value)


def readers(path: Path) -> str | None:
    """Who besides the owner may read a file, with its mode, e.g. "others (mode 0644)"; None
    if nobody (or if the file cannot be looked at: then it is not for this check to say)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    who = [name for bit, name in ((0o040, "its group"), (0o004, "others")) if mode & bit]
    return f"{' and '.join(who)} (mode {mode & 0o7777:04o})" if who else None


def check_secret_permissions(r: Reader) -> None:
    """Warn about a config file with plain-text secrets, or a secret file, that others may read."""
    plain_files = dict.fromkeys(use.file for use in r.secrets if use.kind == "plain")
    for file in plain_files:
        if (who := readers(Path(file))) is not None:
            message = (
                f"holds plain-text secrets and is readable by {who}: chmod 600 {file}, or write "
                "the secrets as references ({command: ...}, {env: ...}, {file: ...} or "
                "{credential: ...})"
            )
            r.warnings.append(str(Problem(file, None, "", message)))
    for use in r.secrets:
        if use.kind != "file" or use.path is None:
            continue
        if (who := readers(use.path)) is not None:
            message = f"{use.path} is readable by {who}: chmod 600 {use.path}"
            r.warnings.append(str(Problem(use.file, use.line, use.option, message)))
