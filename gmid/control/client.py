"""Typed async client of the control socket, used by the CLI and the TUI.

Each method of the daemon has a method here that sends its parameters and returns its answer as
a payload of gmid/control/protocol.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gmid.control import protocol as p
from gmid.control.cookiefile import CookieFileError, read_file
from gmid.errors import ControlError, DaemonNotRunning

__all__ = ["UNSET", "ControlClient", "ControlError", "CookieFileError", "DaemonNotRunning"]


class _Unset:
    """The type of UNSET: a parameter left out, where None means something."""


UNSET = _Unset()


class ControlClient:
    """One connection to the daemon; requests may be concurrent, events arrive alongside."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: Path):
        self.path = path
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._events: asyncio.Queue[p.Event | None] = asyncio.Queue()
        self._closed: BaseException | None = None
        self._reading = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, path: str | Path, *, timeout: float = 5) -> ControlClient:
        """Connect to the daemon's socket; DaemonNotRunning when nothing listens there."""
        path = Path(path)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(path), limit=p.MAX_LINE * 16), timeout
            )
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise DaemonNotRunning(
                f"no gmid daemon is listening on {path} (start it with `gmid daemon`)"
            ) from e
        except PermissionError as e:
            raise DaemonNotRunning(
                f"{path}: permission denied (the daemon runs as another user)"
            ) from e
        except TimeoutError as e:
            raise DaemonNotRunning(f"{path}: the daemon did not answer within {timeout:g} s") from e
        return cls(reader, writer, path)

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection."""
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reading
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        error: BaseException = DaemonNotRunning(f"the daemon closed the connection on {self.path}")
        try:
            while line := await self._reader.readline():
                self._dispatch(json.loads(line))
        except (ConnectionError, ValueError) as e:
            error = DaemonNotRunning(f"lost the connection to the daemon on {self.path}: {e}")
        finally:
            self._closed = error
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()
            self._events.put_nowait(None)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" not in message and message.get("method") == "event":
            self._events.put_nowait(p.Event.from_dict(message.get("params", {})))
            return
        future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
        if future is None:
            if "error" in message:  # e.g. refused before any request: fail every later call
                err = message["error"]
                self._closed = ControlError(err.get("code", 0), err.get("message", "error"))
            return
        if future.done():
            return
        if "error" in message:
            err = message["error"]
            future.set_exception(
                ControlError(err.get("code", 0), err.get("message", "error"), err.get("data"))
            )
        else:
            future.set_result(message.get("result"))

    async def call(self, method: str, **params: Any) -> Any:
        """Call a method and return its result as JSON; ControlError for an error answer.

        The raw request, for what no typed method covers (a test of the protocol itself).
        Parameters that are None are not sent.
        """
        return await self._request(method, {k: v for k, v in params.items() if v is not None})

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        if self._closed is not None:
            raise self._closed
        id_ = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[id_] = future
        self._writer.write(p.encode(p.request(id_, method, params)))
        try:
            await self._writer.drain()
        except ConnectionError as e:
            self._pending.pop(id_, None)
            raise DaemonNotRunning(f"lost the connection to the daemon on {self.path}") from e
        return await future

    # -- the daemon ----------------------------------------------------------------------------

    async def status(self) -> p.Status:
        """The daemon's status."""
        return p.Status.from_dict(await self.call("status"))

    async def mailboxes(self) -> list[p.MailboxInfo]:
        """Every configured IMAP mailbox with its connection state and counts."""
        return [p.MailboxInfo.from_dict(d) for d in await self.call("mailboxes.list")]

    async def reload(self) -> bool:
        """Make the daemon read its config again; False when it refused the new one (its log
        says why) and kept the running config."""
        return (await self.reload_answer()).reloaded

    async def reload_answer(self) -> p.Reloaded:
        """Make the daemon read its config again: whether it did, and why not if it refused."""
        return p.Reloaded.from_dict(await self.call("config.reload"))

    async def documents(
        self,
        *,
        company: str | None = None,
        source: str | None = None,
        since: str | None = None,
        received_since: str | None = None,
        text: str | None = None,
        search: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> p.DocumentPage:
        """A page of archived documents, newest first (by the document's date), filtered:
        company (any case), source, since (the document's date, "2026-01-31"),
        received_since (its arrival), text (path, company, name, number or amount) and search
        (every word in the document's text, number, company, seller or amount)."""
        result = await self.call(
            "documents.list",
            company=company,
            source=source,
            since=since,
            received_since=received_since,
            text=text,
            search=search,
            limit=limit,
            offset=offset,
        )
        return p.DocumentPage.from_dict(result)

    async def document(self, doc_id: int) -> p.DocumentDetails:
        """One document: every field and where it came from, its check, sources and path."""
        return p.DocumentDetails.from_dict(await self.call("documents.show", id=doc_id))

    async def render_document(
        self, doc_id: int, fmt: str = "text", width: int | None = None
    ) -> p.Rendering:
        """A document's e-invoice rendered as "html" or "text" (lines of at most `width`);
        ControlError NOT_FOUND when the document has no e-invoice XML."""
        return p.Rendering.from_dict(
            await self.call("documents.render", id=doc_id, format=fmt, width=width)
        )

    async def recent_events(self, limit: int = 100) -> list[p.Event]:
        """The daemon's recent events (up to 200 are kept), oldest first."""
        return [p.Event.from_dict(e) for e in await self.call("events.recent", limit=limit)]

    async def events(self, types: list[str] | None = None) -> AsyncIterator[p.Event]:
        """Subscribe and yield events as the daemon publishes them, until it goes away."""
        async for event in await self.subscribe(types):
            yield event

    async def subscribe(self, types: list[str] | None = None) -> AsyncIterator[p.Event]:
        """Subscribe now, and return the events published from here on as they come.

        Unlike `events`, the subscription is in place when this returns: a request sent next
        cannot cause an event that is missed.
        """
        p.Subscribed.from_dict(await self.call("subscribe", types=types))
        return self._published()

    async def _published(self) -> AsyncIterator[p.Event]:
        while (event := await self._events.get()) is not None:
            yield event
        if isinstance(self._closed, DaemonNotRunning):
            raise self._closed

    # -- portals -------------------------------------------------------------------------------

    async def portals(self) -> list[p.PortalInfo]:
        """Every configured portal with its state, its last run and its next."""
        return [p.PortalInfo.from_dict(d) for d in await self.call("portals.list")]

    async def fetch(self, portal: str, *, wait: bool = False) -> p.RunInfo | None:
        """Start a download from a portal; with wait, return how the run ended."""
        result = await self.call("portal.fetch", portal=portal, wait=wait)
        return p.Fetched.from_dict(result).run

    async def test_login(self, name: str) -> p.RunInfo:
        """Log in to a portal and nothing else, and say how it went (outcome "ok" or why not).

        Codes are asked as in a run. The portal's last run, which the scheduler plans from, is
        left as it was; the test's events carry `test: true`.
        """
        return p.RunInfo.from_dict(await self.call("portal.test_login", name=name))

    async def test_new_portal(
        self,
        name: str,
        *,
        company: str | None = None,
        connector: str | None = None,
        form: dict[str, Any] | str | None = None,
        options: dict[str, Any] | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> p.RunInfo:
        """Try the login of a portal before adding it, with what `add_portal` would take.

        Nothing is written and no document is listed. A code the portal asks for ends the test
        (outcome "asks for a code": the password was accepted); nobody is asked for it.
        ControlError (INVALID_PARAMS) when `add_portal` would refuse the portal.
        """
        result = await self.call(
            "portal.test_login",
            name=name,
            company=company,
            connector=connector,
            form=form,
            options=options,
            username=username,
            password=password,
        )
        return p.RunInfo.from_dict(result)

    async def try_portal(
        self, name: str, *, download: int = 0, into: str | None = None, rows: int | None = None
    ) -> p.TryReport:
        """Try a portal's description (a disabled draft too) step by step: the login and the
        list, each request and what each selector or path matched, and `download` documents
        saved `into` a folder (default: the daemon's trial folder), never the archive.

        Nothing is recorded: no run, no document, no session. A code is asked as in a run.
        """
        result = await self.call("portal.try", name=name, download=download, into=into, rows=rows)
        return p.TryReport.from_dict(result)

    async def schedule(self, days: int = 7) -> p.SchedulePreview:
        """The runs of the coming days and the quiet periods."""
        return p.SchedulePreview.from_dict(await self.call("schedule.preview", days=days))

    async def suggest(
        self,
        url: str,
        domain: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        password_file: str | None = None,
    ) -> p.Suggestion:
        """Suggest a portal: the daemon writes a disabled draft for it and says what is left.
        With the user's `username` and `password` it logs in and drafts the documents too;
        `password_file` is what the draft names as `password: {file: ...}`."""
        login = {}
        if username is not None:
            login = {"username": username, "password": password, "password_file": password_file}
        return p.Suggestion.from_dict(
            await self.call("portal.suggest", url=url, domain=domain, **login)
        )

    async def connectors(self) -> p.Connectors:
        """What a portal can be linked with: the connectors' names and the form descriptions
        (pass one's name, or its `form`, as `add_portal(form=...)`)."""
        return p.Connectors.from_dict(await self.call("connectors.list"))

    # -- challenges ----------------------------------------------------------------------------

    async def challenges(self) -> list[p.ChallengeInfo]:
        """The codes, captchas and approvals portals are waiting for."""
        return [p.ChallengeInfo.from_dict(d) for d in await self.call("challenges.list")]

    async def answer(self, key: str, answer: str) -> p.ChallengeInfo:
        """Answer a challenge, by its id or by its portal's name."""
        result = await self.call("challenge.answer", key=key, answer=answer)
        return p.ChallengeInfo.from_dict(result)

    # -- changes of the config -----------------------------------------------------------------

    async def add_portal(
        self,
        name: str,
        *,
        company: str | None = None,
        connector: str | None = None,
        form: dict[str, Any] | str | None = None,
        options: dict[str, Any] | None = None,
        username: str | None = None,
        password: str | None = None,
        password_ref: dict[str, str] | None = None,
        totp_secret: str | None = None,
        totp_secret_ref: dict[str, str] | None = None,
        plain_text: bool = False,
        enabled: bool | None = None,
        schedule: dict[str, Any] | None = None,
    ) -> p.PortalChange:
        """Link a portal: the daemon writes it into `portals.d/NAME.yaml` and loads it.

        `form` is a form description (a mapping) or the name of one from `connectors()`; or
        give `connector` with its `options`. A `password` (or `totp_secret`) is stored in the
        daemon's secret store, and the YAML names that file; with plain_text it is written
        into the YAML itself and a warning says so. `*_ref` writes a reference such as
        {"env": "VAR"} as it is. ControlError (INVALID_PARAMS) when it is refused; its `data`
        has `problems`, one "FILE:LINE: option: message" each, when the entry is not valid.
        """
        result = await self.call(
            "portal.add",
            name=name,
            company=company,
            connector=connector,
            form=form,
            options=options,
            username=username,
            password=password,
            password_ref=password_ref,
            totp_secret=totp_secret,
            totp_secret_ref=totp_secret_ref,
            plain_text=plain_text or None,
            enabled=enabled,
            schedule=schedule,
        )
        return p.PortalChange.from_dict(result)

    async def update_portal(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        schedule: dict[str, Any] | _Unset | None = UNSET,
        company: str | None = None,
        username: str | None = None,
        password: str | None = None,
        password_ref: dict[str, str] | None = None,
        totp_secret: str | None = None,
        totp_secret_ref: dict[str, str] | None = None,
        plain_text: bool = False,
    ) -> p.PortalChange:
        """Change a portal that gmid wrote (or any included file holds); None: unchanged.

        `schedule=None` drops the portal's own schedule (the global one applies again). A
        portal of the main config.yaml is refused: the user changes that file by hand.
        """
        params = {
            "name": name,
            "enabled": enabled,
            "company": company,
            "username": username,
            "password": password,
            "password_ref": password_ref,
            "totp_secret": totp_secret,
            "totp_secret_ref": totp_secret_ref,
            "plain_text": plain_text or None,
        }
        params = {k: v for k, v in params.items() if v is not None}
        if not isinstance(schedule, _Unset):
            params["schedule"] = schedule
        return p.PortalChange.from_dict(await self._request("portal.update", params))

    async def remove_portal(self, name: str, *, delete_secrets: bool = False) -> p.PortalChange:
        """Remove a portal from its included file; its documents stay in the archive.

        With delete_secrets its files in the secret store and its saved session go too (listed
        in the answer's `deleted`).
        """
        result = await self.call("portal.remove", name=name, delete_secrets=delete_secrets)
        return p.PortalChange.from_dict(result)

    async def add_company(self, name: str, senders: list[str]) -> p.CompanyChange:
        """Add a company (addresses or @domains it mails from) in `portals.d/company-NAME.yaml`."""
        result = await self.call("company.add", name=name, senders=senders)
        return p.CompanyChange.from_dict(result)

    # -- a portal's saved session --------------------------------------------------------------

    async def import_session(self, portal: str, text: str) -> p.SessionImported:
        """Make a browser's cookies (cookies.txt text) the portal's saved session.

        The daemon keeps the cookies a browser would send to the portal's hosts and drops the
        others and the expired ones. ControlError: INVALID_PARAMS when no cookie is the
        portal's (the session stays as it was), BUSY while a run of the portal is under way.
        """
        # An over-long request line is refused without its id: the call would never return.
        if len(json.dumps(text, ensure_ascii=False).encode()) > p.MAX_LINE - 4096:
            raise ControlError(p.INVALID_PARAMS, "the cookies file is too large to send")
        result = await self.call("portal.session.import", portal=portal, text=text)
        return p.SessionImported.from_dict(result)

    async def import_session_file(self, portal: str, path: str | Path) -> p.SessionImported:
        """Read a cookies.txt file here (the daemon opens no path a client names) and import
        it as in `import_session`. CookieFileError when the file cannot be read: missing, over
        the size cap, not UTF-8 text."""
        return await self.import_session(portal, await asyncio.to_thread(read_file, path))

    async def clear_session(self, portal: str) -> p.SessionCleared:
        """Forget the portal's saved session: its next run logs in. BUSY while a run of the
        portal is under way."""
        result = await self.call("portal.session.clear", portal=portal)
        return p.SessionCleared.from_dict(result)

    async def session(self, portal: str) -> p.SessionInfo:
        """The portal's saved session: its cookies without their values."""
        return p.SessionInfo.from_dict(await self.call("portal.session.show", portal=portal))

    # -- delivery ------------------------------------------------------------------------------

    async def outbox(
        self,
        *,
        destination: str | None = None,
        states: list[str] | None = None,
        document_id: int | None = None,
        limit: int = 200,
    ) -> p.OutboxPage:
        """The destinations with their counts, and the outbox's rows: by default the pending
        and failed ones, with the destination's words."""
        result = await self.call(
            "outbox.list",
            destination=destination,
            states=states,
            document_id=document_id,
            limit=limit,
        )
        return p.OutboxPage.from_dict(result)

    async def deliver(self, destination: str, *, since: str | None = None) -> p.Queued:
        """Queue documents filed before for a destination: all, or those of `since`
        ("2026-01-31") and later. Documents queued before are not queued again."""
        every = True if since is None else None
        result = await self.call("deliver.queue", destination=destination, since=since, all=every)
        return p.Queued.from_dict(result)

    async def retry_deliveries(
        self, destination: str | None = None, document_id: int | None = None
    ) -> p.Queued:
        """Try failed deliveries (and those waiting for their next try) again now."""
        result = await self.call("outbox.retry", destination=destination, document_id=document_id)
        return p.Queued.from_dict(result)

    async def delivery_states(self, document_ids: list[int]) -> p.DeliveryStates:
        """The configured destinations, and where each of these documents stands with them."""
        result = await self.call("deliveries.states", document_ids=document_ids)
        return p.DeliveryStates.from_dict(result)
