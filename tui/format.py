"""How the TUI says things: times, states, event lines, masked user names."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

from rich.text import Text

from gmid.control import protocol as p

# The state column: what a user must know at a glance, and its colour.
STATE_STYLES = {
    "ok": "green",
    "running": "cyan",
    "queued": "cyan",
    "waiting for code": "bold yellow",
    "waiting for captcha": "bold yellow",
    "waiting for approval": "bold yellow",
    "wrong credentials": "bold red",
    "portal changed": "magenta",
    "unavailable": "yellow",
    "timed out": "yellow",
    "stopped": "dim",  # the daemon stopped mid-run: retried after the restart
    "code rejected": "yellow",
    "captcha unsolved": "yellow",
    "session expired": "yellow",
    "insecure": "red",
    "error": "red",
    "disabled": "dim",
    "never run": "dim",
}

# A mailbox's state, as the portal state it is like (and so its colour).
MAILBOX_STATES = {
    "idle": "ok",
    "polling": "ok",
    "syncing": "running",
    "connecting": "running",
    "disabled": "disabled",
}


def parse_time(iso: str | None) -> datetime | None:
    """An ISO time from the daemon, or None."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return None


def short_time(iso: str | None, now: datetime, tz: tzinfo) -> str:
    """A time in at most 9 characters: "14:05" today, "Tue 09:30" this week, else "02 Mar"."""
    when = parse_time(iso)
    if when is None:
        return "-"
    local, today = when.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if abs((local.date() - today.date()).days) < 7:
        return local.strftime("%a %H:%M")
    if local.year == today.year:
        return local.strftime("%d %b")
    return local.strftime("%Y-%m-%d")


def long_time(iso: str | None, tz: tzinfo) -> str:
    """A time as a full local date and time, "Tue 03 Mar 2026 09:30"."""
    when = parse_time(iso)
    return when.astimezone(tz).strftime("%a %d %b %Y %H:%M") if when else "-"


def count(n: int | None) -> str:
    """A count with thousands separators; "…" while it is not known yet."""
    return "…" if n is None else f"{n:,}"


def clip(text: str, width: int) -> str:
    """Cut a text to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def mask(user: str | None) -> str:
    """A user name shown without giving it away: "me@example.org" -> "m•••@example.org"."""
    if not user:
        return "-"
    local, at, domain = user.partition("@")
    if len(local) <= 2:
        return "•" * len(local) + at + domain
    return local[0] + "•" * min(len(local) - 1, 6) + at + domain


def seconds_left(text_seconds: float) -> str:
    """A countdown: "4:59", "0:07", or "expired"."""
    left = math.ceil(text_seconds)
    if left <= 0:
        return "expired"
    return f"{left // 60}:{left % 60:02d}"


def portal_state(
    portal: p.PortalInfo, waiting: p.ChallengeInfo | None
) -> tuple[str, str, str | None]:
    """The state a user should see: (label, style key, progress detail)."""
    if waiting is not None:
        label = f"waiting for {'captcha' if waiting.kind == 'token' else waiting.kind}"
        return label, label, waiting.prompt
    if portal.state in ("running", "queued"):
        progress = portal.progress if portal.progress not in (None, "queued") else None
        return (progress or portal.state), "running", progress
    if not portal.enabled:
        return "disabled", "disabled", None
    return portal.state, portal.state, None


def styled_state(label: str, key: str, width: int = 17) -> Text:
    """A state label in its colour, cut to the column."""
    prefix = "↻ " if key == "running" else ""
    return Text(clip(prefix + label, width), style=STATE_STYLES.get(key, ""))


def mailbox_reason(box: p.MailboxInfo) -> str:
    """Why a mailbox fails, in the server's words: once if all its failing folders say the same,
    else per folder."""
    errors = {f.error for f in box.folders if f.state in ("failing", "blind")}
    if len(errors) == 1 and None not in errors:
        return str(errors.pop())
    return box.error or "failing"


def imap_state(state: str, reason: str | None = None, width: int = 17) -> Text:
    """A mailbox's (or a folder's) state in its colour, cut to the column; failing, it says why,
    in red like a failing portal (bold when the login was refused, like wrong credentials)."""
    if state == "blind":  # connected, but the server hides new mail: say why, as a warning
        return Text(clip(f"blind: {reason}" if reason else "blind", width), style="yellow")
    if state != "failing":
        return styled_state(state, MAILBOX_STATES.get(state, ""), width)
    reason = reason or "failing"
    key = "wrong credentials" if "login refused" in reason else "error"
    return Text(clip(reason, width), style=STATE_STYLES[key])


def mailbox_state(box: p.MailboxInfo, width: int = 17) -> Text:
    """A mailbox's state for its row: a failing one shows its reason."""
    return imap_state(box.state, mailbox_reason(box), width)


def account(box: p.MailboxInfo) -> str:
    """The account a mailbox reads, its user masked as a portal's: "m•••@example.org@imap.x"."""
    return f"{mask(box.username)}@{box.host}"


def run_summary(run: p.RunInfo | None, tz: tzinfo) -> str:
    """The last run in one line: "ok: 6 new documents (Tue 03 Mar 2026 09:30)"."""
    if run is None:
        return "never run"
    said = f": {run.message}" if run.message else ""
    return f"{run.outcome}{said} ({long_time(run.finished_at, tz)})"


def event_line(event: p.Event, tz: tzinfo) -> Text:
    """One event as a log line: time, type, and what it says."""
    when = parse_time(event.time)
    stamp = when.astimezone(tz).strftime("%d %b %H:%M:%S") if when else event.time
    data = event.data
    what = _describe(event.type, data)
    line = Text()
    line.append(f"{stamp} ", style="dim")
    line.append(f"{event.type:<18} ", style=_event_style(event.type, data))
    line.append(what)
    return line


def _describe(kind: str, data: dict) -> str:
    portal = data.get("portal", "")
    if kind == "document.added":
        doc = data.get("document", {})
        return f"{doc.get('company', '?')}: {doc.get('path', '?')} (from {doc.get('source', '?')})"
    if kind == "portal.finished":
        said = f" ({data['portal_message']})" if data.get("portal_message") else ""
        return f"{portal}: {data.get('outcome', '?')}: {data.get('message') or ''}{said}"
    if kind == "portal.progress":
        return f"{portal}: {data.get('progress', '')}"
    if kind in ("portal.queued", "portal.started"):
        return f"{portal}{' (by hand)' if data.get('manual') else ''}"
    if kind == "challenge.pending":
        return f"{portal} asks for a {data.get('kind', 'code')}: {data.get('prompt', '')}"
    if kind.startswith("challenge."):
        why = f" ({data['reason']})" if data.get("reason") else ""
        return f"{portal}: {data.get('kind', 'code')}{why}"
    if kind == "mail.quarantined":
        return f"a mail from {data.get('source', '?')} kept in quarantine: {data.get('path', '')}"
    if kind == "events.lost":
        return f"{data.get('count', '?')} events lost (the TUI was too slow)"
    if portal:
        return portal
    return ", ".join(f"{k}={v}" for k, v in data.items() if not isinstance(v, dict | list))


def _event_style(kind: str, data: dict) -> str:
    if kind == "challenge.pending":
        return "bold yellow"
    if kind == "portal.finished":
        return STATE_STYLES.get(data.get("outcome", ""), "")
    if kind in ("mail.quarantined", "events.lost"):
        return "red"
    if kind == "document.added":
        return "green"
    return "cyan"
