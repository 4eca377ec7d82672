"""The control socket's portal and challenge methods."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import connectors
from gmid.config import edit as manage
from gmid.config.load import Company
from gmid.control import protocol as p
from gmid.daemon.rpc.server import Connection, Handler, RpcError
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.runner import PortalRunner
from gmid.portals.sessions import session_methods
from gmid.schedule.scheduler import PortalScheduler

_PORTAL_OPTIONS = ("enabled", "company", "username", "schedule")
_SECRET_PARAMS = ("password", "password_ref", "totp_secret", "totp_secret_ref", "plain_text")
_CHANGES = (*_PORTAL_OPTIONS, *_SECRET_PARAMS[:-1])


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RpcError(p.INVALID_PARAMS, f"{key} must be a non-empty string")
    return value


def portal_methods(
    runner: PortalRunner,
    broker: ChallengeBroker,
    reload: Callable[[], Awaitable[bool]],
) -> dict[str, Handler]:
    """Return the portal and challenge methods of the control socket, by method name.

    `reload` reloads the daemon's config (after `suggest` wrote a draft into portals.d).
    """

    async def portals_list(params: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        return runner.states()

    async def portal_fetch(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        name = _text(params, "portal")
        wait = params.get("wait", False)
        if not isinstance(wait, bool):
            raise RpcError(p.INVALID_PARAMS, "wait must be true or false")
        future = runner.fetch(name, manual=True)
        if not wait:
            return {"started": True}
        # shield: a client that goes away must not cancel the run itself.
        record = await asyncio.shield(future)
        return {"run": record.to_dict()}

    async def portal_suggest(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        url = _text(params, "url")
        domain = params.get("domain")
        if domain is not None:
            domain = _text(params, "domain")
        from gmid.portals.suggest import suggest  # bs4 and requests: not at daemon start

        # blocking: the page is fetched and the draft written in a worker thread
        result = await asyncio.to_thread(
            suggest, url, domain=domain, config=runner.config, index=runner.index
        )
        # The draft is a portal at once: `gmid fetch NAME --wait` can try it right away.
        result["loaded"] = bool(result.get("draft")) and await reload()
        return result

    async def challenges_list(params: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        return [c.to_dict() for c in broker.pending()]

    async def challenge_answer(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        key = _text(params, "key")
        answer = _text(params, "answer")
        try:
            return broker.answer(key, answer).to_dict()
        except ValueError as e:
            raise RpcError(p.INVALID_PARAMS, str(e)) from None

    return {
        "portals.list": portals_list,
        "portal.fetch": portal_fetch,
        "portal.suggest": portal_suggest,
        "challenges.list": challenges_list,
        "challenge.answer": challenge_answer,
        **manage_methods(runner, reload),
        **session_methods(runner),
    }


def manage_methods(
    runner: PortalRunner, reload: Callable[[], Awaitable[bool]]
) -> dict[str, Handler]:
    """Return the methods that add and change portals and companies (gmid/config/edit.py), with
    test logins, recent events and the connectors for the TUI.

    Each change is written into the include folder, then the config is reloaded at once.
    """
    lock = asyncio.Lock()  # one change at a time: each checks names against the files on disk

    async def change(kind: str, fn: Callable[..., manage.Change], *args: Any, **kw: Any) -> dict:
        async with lock:
            try:
                done = await asyncio.to_thread(fn, runner.config.path, *args, **kw)
            except manage.ChangeRefused as e:
                data = {"problems": e.problems} if e.problems else None
                raise RpcError(p.INVALID_PARAMS, str(e), data) from None
            except OSError as e:
                raise RpcError(p.INTERNAL_ERROR, f"could not write the change: {e}") from None
            loaded = await reload()
        answer = done.to_dict() | {"loaded": loaded}
        if not loaded:
            answer["warnings"].append(
                "the daemon kept its running config (see its log; `gmid check-config` says why)"
            )
        if kind.startswith("company"):
            companies = runner.config.companies
            answer["company"] = next((_company(c) for c in companies if c.name == done.name), None)
            runner.events.publish(kind, company=done.name, file=answer["file"])
        else:
            answer["portal"] = next((s for s in runner.states() if s["name"] == done.name), None)
            runner.events.publish(kind, portal=done.name, file=answer["file"])
        return answer

    async def portal_add(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        _only(params, ("name", "connector", "form", "options", *_PORTAL_OPTIONS, *_SECRET_PARAMS))
        form = params.get("form")
        if form is not None and not isinstance(form, str | dict):
            raise RpcError(p.INVALID_PARAMS, "form must be a form description or its name")
        options = _mapping(params, "options")
        if form is not None and options is not None:
            raise RpcError(p.INVALID_PARAMS, "give either form or options")
        return await change(
            "portal.added",
            manage.add_portal,
            _text(params, "name"),
            connector=_opt_text(params, "connector"),
            form=form,
            options=options,
            **_portal_options(params),
            **_secrets(params),
        )

    async def portal_update(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        _only(params, ("name", *_PORTAL_OPTIONS, *_SECRET_PARAMS))
        name = _text(params, "name")
        options = _portal_options(params)
        if "schedule" in params and params["schedule"] is None:
            options["schedule"] = None  # null: the portal follows the global schedule again
        secrets = _secrets(params)
        if not options and not secrets["secrets"]:
            raise RpcError(p.INVALID_PARAMS, "nothing to change: give " + ", ".join(_CHANGES))
        return await change(
            "portal.updated", manage.update_portal, name, changes=options, **secrets
        )

    async def portal_remove(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        _only(params, ("name", "delete_secrets"))
        delete = _flag(params, "delete_secrets") or False
        name = _text(params, "name")
        return await change("portal.removed", manage.remove_portal, name, delete_secrets=delete)

    async def company_add(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        _only(params, ("name", "senders"))
        senders = params.get("senders")
        if not isinstance(senders, list) or not all(isinstance(s, str) for s in senders):
            raise RpcError(p.INVALID_PARAMS, "senders must be a list of addresses or @domains")
        if not senders:
            raise RpcError(p.INVALID_PARAMS, "senders: give at least one address or @domain")
        return await change("company.added", manage.add_company, _text(params, "name"), senders)

    async def portal_test_login(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        _only(params, ("name",))
        future = runner.fetch(_text(params, "name"), manual=True, login_only=True)
        # shield: a client that goes away must not cancel the test itself.
        record = await asyncio.shield(future)
        return record.to_dict() | {"test": True}

    async def events_recent(params: dict[str, Any], conn: Connection) -> list[dict[str, Any]]:
        limit = params.get("limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise RpcError(p.INVALID_PARAMS, "limit must be a whole number 1..1000")
        return list(runner.events.recent)[-limit:]

    async def connectors_list(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        config = runner.config
        # blocking: entry points and YAML files are read
        names = await asyncio.to_thread(connectors.available)
        forms = await asyncio.to_thread(manage.form_descriptions, config)
        return {"connectors": names, "forms": forms}

    return {
        "portal.add": portal_add,
        "portal.update": portal_update,
        "portal.remove": portal_remove,
        "company.add": company_add,
        "portal.test_login": portal_test_login,
        "events.recent": events_recent,
        "connectors.list": connectors_list,
    }


def _only(params: dict[str, Any], known: tuple[str, ...]) -> None:
    """Refuse parameters the method does not know: a typo must not be silently ignored."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise RpcError(
            p.INVALID_PARAMS, f"unknown parameter {', '.join(unknown)} (known: {', '.join(known)})"
        )


def _company(company: Company) -> dict[str, Any]:
    return {"name": company.name, "senders": list(company.senders), "file": company.file}


def _opt_text(params: dict[str, Any], key: str) -> str | None:
    return None if params.get(key) is None else _text(params, key)


def _flag(params: dict[str, Any], key: str) -> bool | None:
    value = params.get(key)
    if value is not None and not isinstance(value, bool):
        raise RpcError(p.INVALID_PARAMS, f"{key} must be true or false")
    return value


def _mapping(params: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise RpcError(p.INVALID_PARAMS, f"{key} must be a mapping")
    return value


def _portal_options(params: dict[str, Any]) -> dict[str, Any]:
    """The plain options of a portal that the call sets (not given: left out)."""
    found: dict[str, Any] = {}
    for key, value in (
        ("enabled", _flag(params, "enabled")),
        ("company", _opt_text(params, "company")),
        ("username", _opt_text(params, "username")),
        ("schedule", _mapping(params, "schedule")),
    ):
        if value is not None:
            found[key] = value
    return found


def _secrets(params: dict[str, Any]) -> dict[str, Any]:
    """The secrets a call gives, as text to store or as references; never echoes a value."""
    given = {}
    for option in manage.SECRET_FILES:
        text, ref = params.get(option), params.get(f"{option}_ref")
        if text is not None and ref is not None:
            raise RpcError(p.INVALID_PARAMS, f"give either {option} or {option}_ref")
        if text is not None:
            if not isinstance(text, str) or not text:
                raise RpcError(p.INVALID_PARAMS, f"{option} must be a non-empty string")
            given[option] = manage.Secret(text=text)
        elif ref is not None:
            given[option] = manage.Secret(ref=_mapping(params, f"{option}_ref"))
    return {"secrets": given, "plain_text": bool(_flag(params, "plain_text"))}


def schedule_methods(scheduler: PortalScheduler) -> dict[str, Handler]:
    """Handlers for schedule.preview."""

    async def schedule_preview(params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        days = params.get("days", 7)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
            raise RpcError(p.INVALID_PARAMS, "days must be a whole number 1..366")
        return await asyncio.to_thread(scheduler.preview, days)

    return {"schedule.preview": schedule_preview}
