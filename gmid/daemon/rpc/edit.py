"""The control methods that change the config: add, change and remove portals, add companies.

Each change is written into the include folder by gmid/config/edit.py, one at a time, and the
config is reloaded at once; the answer says what was written and whether the daemon runs with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gmid.config import edit
from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.portals import portal_info
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services
from gmid.daemon.rpc.status import company_info
from gmid.errors import GmidError

PORTAL_OPTIONS = ("enabled", "company", "username", "schedule")
SECRET_PARAMS = ("password", "password_ref", "totp_secret", "totp_secret_ref", "plain_text")
CHANGES = (*PORTAL_OPTIONS, *SECRET_PARAMS[:-1])
KEPT = "the daemon kept its running config (see its log; `gmid check-config` says why)"


async def portal_add(s: Services, params: Params, conn: Connection) -> p.PortalChange:
    """Link a portal: a form description (or its name), or a connector with its options."""
    check.only(params, ("name", "connector", "form", "options", *PORTAL_OPTIONS, *SECRET_PARAMS))
    form = params.get("form")
    if form is not None and not isinstance(form, str | dict):
        raise InvalidParams("form must be a form description or its name")
    options = check.mapping(params, "options")
    if form is not None and options is not None:
        raise InvalidParams("give either form or options")
    done, loaded = await _change(
        s,
        edit.add_portal,
        check.text(params, "name"),
        connector=check.optional_text(params, "connector"),
        form=form,
        options=options,
        **portal_options(params),
        **secrets(params),
    )
    return _portal_answer(s, "portal.added", done, loaded)


async def portal_update(s: Services, params: Params, conn: Connection) -> p.PortalChange:
    """Change a portal of an included file: its options, its secrets; null drops a schedule."""
    check.only(params, ("name", *PORTAL_OPTIONS, *SECRET_PARAMS))
    name = check.text(params, "name")
    options = portal_options(params)
    if "schedule" in params and params["schedule"] is None:
        options["schedule"] = None  # null: the portal follows the global schedule again
    given = secrets(params)
    if not options and not given["secrets"]:
        raise InvalidParams("nothing to change: give " + ", ".join(CHANGES))
    done, loaded = await _change(s, edit.update_portal, name, changes=options, **given)
    return _portal_answer(s, "portal.updated", done, loaded)


async def portal_remove(s: Services, params: Params, conn: Connection) -> p.PortalChange:
    """Remove a portal from its included file (with its secrets and session, if asked)."""
    check.only(params, ("name", "delete_secrets"))
    delete = check.flag(params, "delete_secrets") or False
    name = check.text(params, "name")
    done, loaded = await _change(s, edit.remove_portal, name, delete_secrets=delete)
    return _portal_answer(s, "portal.removed", done, loaded)


async def company_add(s: Services, params: Params, conn: Connection) -> p.CompanyChange:
    """Add a company, with the addresses (or @domains) it sends from."""
    check.only(params, ("name", "senders"))
    senders = check.strings(params, "senders", "addresses or @domains")
    if senders is None:
        raise InvalidParams("senders must be a list of addresses or @domains")
    if not senders:
        raise InvalidParams("senders: give at least one address or @domain")
    done, loaded = await _change(s, edit.add_company, check.text(params, "name"), senders)
    company = next((c for c in s.daemon.config.companies if c.name == done.name), None)
    info = company_info(company) if company else None
    answer = p.CompanyChange.from_dict(_changed(done, loaded) | {"company": info})
    s.daemon.events.publish("company.added", company=done.name, file=answer.file)
    return answer


async def _change(
    s: Services, fn: Callable[..., edit.Change], *args: Any, **kwargs: Any
) -> tuple[edit.Change, bool]:
    """Write one change, then reload: what was written, and whether the daemon runs with it."""
    async with s.edits:
        try:
            done = await asyncio.to_thread(fn, s.daemon.config.path, *args, **kwargs)
        except edit.ChangeRefused as e:
            raise InvalidParams(str(e), {"problems": e.problems} if e.problems else None) from None
        except OSError as e:
            raise GmidError(f"could not write the change: {e}") from None
        return done, await s.daemon.reload()


def _changed(done: edit.Change, loaded: bool) -> dict[str, Any]:
    """The answer's common part: the files written and deleted, the warnings, `loaded`."""
    warnings = [*done.warnings] if loaded else [*done.warnings, KEPT]
    return done.to_dict() | {"warnings": warnings, "loaded": loaded}


def _portal_answer(s: Services, kind: str, done: edit.Change, loaded: bool) -> p.PortalChange:
    """Tell the portal's change to subscribers and answer with the portal as it is now."""
    info = portal_info(s, done.name)
    answer = p.PortalChange.from_dict(_changed(done, loaded) | {"portal": info})
    s.daemon.events.publish(kind, portal=done.name, file=answer.file)
    return answer


def portal_options(params: Params) -> dict[str, Any]:
    """The plain options of a portal that the call sets (not given: left out)."""
    found = {
        "enabled": check.flag(params, "enabled"),
        "company": check.optional_text(params, "company"),
        "username": check.optional_text(params, "username"),
        "schedule": check.mapping(params, "schedule"),
    }
    return {key: value for key, value in found.items() if value is not None}


def secrets(params: Params) -> dict[str, Any]:
    """The secrets a call gives, as text to store or as references; never echoes a value."""
    given = {}
    for option in edit.SECRET_FILES:
        text, ref = params.get(option), params.get(f"{option}_ref")
        if text is not None and ref is not None:
            raise InvalidParams(f"give either {option} or {option}_ref")
        if text is not None:
            if not isinstance(text, str) or not text:
                raise InvalidParams(f"{option} must be a non-empty string")
            given[option] = edit.Secret(text=text)
        elif ref is not None:
            given[option] = edit.Secret(ref=check.mapping(params, f"{option}_ref"))
    return {"secrets": given, "plain_text": bool(check.flag(params, "plain_text"))}
