"""The control methods about portals: list them, fetch one, test its login, try its
description, suggest a new one, and what a portal can be linked with."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import connectors
from gmid.config import edit
from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services
from gmid.portals.runner import run_info
from gmid.portals.trial import try_login

# What a test login of a portal not added yet takes besides its name: what `portal.add` takes.
DRAFT = ("company", "connector", "form", "options", "username", "password")


def portal_infos(s: Services) -> list[p.PortalInfo]:
    """Every configured portal: the runner's state and last run, the scheduler's next run."""
    infos = []
    for info in s.runner.states():
        planned = s.scheduler.planned(info.name)
        if planned is not None:
            at = planned.at.isoformat() if planned.at else None
            info = dataclasses.replace(info, next_run=at, next_reason=planned.reason)
        infos.append(info)
    return infos


def portal_info(s: Services, name: str) -> p.PortalInfo | None:
    """One portal as `portal_infos` shows it; None when it is not configured (any more)."""
    return next((info for info in portal_infos(s) if info.name == name), None)


async def portals_list(s: Services, params: Params, conn: Connection) -> list[p.PortalInfo]:
    """Every configured portal with its state, its last run and its next."""
    return portal_infos(s)


async def portal_fetch(s: Services, params: Params, conn: Connection) -> p.Fetched:
    """Start a run of a portal now; with `wait`, answer when it has ended."""
    name = check.text(params, "portal")
    wait = check.flag(params, "wait") or False
    future = s.runner.fetch(name, manual=True)
    if not wait:
        return p.Fetched(started=True)
    # shield: a client that goes away must not cancel the run itself.
    record = await asyncio.shield(future)
    return p.Fetched(started=True, run=run_info(record))


async def portal_test_login(s: Services, params: Params, conn: Connection) -> p.RunInfo:
    """Log in to a portal and nothing else; answer how it went.

    With what `portal.add` takes (connector or form, username, password...), the portal is
    one not added yet: the login is tried with that, and nothing is written.
    """
    check.only(params, ("name", *DRAFT))
    if any(key in params for key in DRAFT):
        return await _test_draft(s, params)
    future = s.runner.fetch(check.text(params, "name"), manual=True, login_only=True)
    # shield: a client that goes away must not cancel the test itself.
    record = await asyncio.shield(future)
    return run_info(record, test=True)


async def _test_draft(s: Services, params: Params) -> p.RunInfo:
    """Try the login of a portal as `portal.add` would write it; the password is not kept."""
    form = params.get("form")
    if form is not None and not isinstance(form, str | dict):
        raise InvalidParams("form must be a form description or its name")
    password = params.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise InvalidParams("password must be a non-empty string")
    try:
        # blocking: the config on disk is read and checked
        portal = await asyncio.to_thread(
            edit.draft_portal,
            s.daemon.config.path,
            check.text(params, "name"),
            company=check.optional_text(params, "company"),
            connector=check.optional_text(params, "connector"),
            form=form,
            options=check.mapping(params, "options"),
            username=check.optional_text(params, "username"),
            password=password,
        )
    except edit.ChangeRefused as e:
        raise InvalidParams(str(e), {"problems": e.problems} if e.problems else None) from None
    runner = s.runner
    # blocking: the login's requests, in a worker thread with the run's deadlines
    return await asyncio.to_thread(
        try_login, portal, s.daemon.config, runner.archive, s.index, s.daemon.events, runner.halt
    )


async def portal_try(s: Services, params: Params, conn: Connection) -> p.TryReport:
    """Try a portal's description step by step (a disabled draft too); record nothing.

    `download` documents are saved `into` a folder (an absolute path; default: the portal's
    trial folder), never into the archive. A code is asked through the challenges, as in a run.
    """
    from gmid.portals import tryout  # bs4 and requests: not at daemon start

    check.only(params, ("name", "download", "into", "rows"))
    portal = s.runner.portal(check.text(params, "name"))
    download = check.whole_number(params, "download", 0, 0, tryout.MAX_DOWNLOADS)
    rows = check.whole_number(params, "rows", tryout.TRY_ROWS, 1, tryout.MAX_ROWS)
    into = check.optional_text(params, "into")
    if into is not None and not Path(into).is_absolute():
        raise InvalidParams("into: the folder for the downloads, as an absolute path")
    runner = s.runner
    # blocking: the trial's requests, in a worker thread with the run's deadlines
    return await asyncio.to_thread(
        tryout.try_portal,
        portal,
        s.daemon.config,
        runner.archive,
        s.index,
        s.broker,
        s.daemon.events,
        runner.halt,
        download=download,
        into=Path(into) if into is not None else None,
        rows=rows,
    )


async def portal_suggest(s: Services, params: Params, conn: Connection) -> p.Suggestion:
    """Write a disabled draft description of a portal gmid does not know, from its URL."""
    url = check.text(params, "url")
    domain = check.optional_text(params, "domain")
    username = check.optional_text(params, "username")
    from gmid.portals.suggest import Login, suggest  # bs4 and requests: not at daemon start

    login = None
    if username is not None:  # the user's own login: the password is sent to the portal only
        password = params.get("password")
        if not isinstance(password, str) or not password:
            raise InvalidParams("password: the password goes with the user name")
        login = Login(username, password, check.optional_text(params, "password_file"))
    # blocking: the page is fetched and the draft written in a worker thread
    found = await asyncio.to_thread(
        suggest, url, domain=domain, config=s.daemon.config, index=s.index, login=login
    )
    # The draft is a portal at once: `gmid fetch NAME --wait` can try it right away.
    loaded = bool(found.get("draft")) and await s.daemon.reload()
    return p.Suggestion.from_dict(found | {"loaded": loaded})


async def connectors_list(s: Services, params: Params, conn: Connection) -> p.Connectors:
    """The connectors and the form descriptions a portal can be linked with."""
    config = s.daemon.config
    # blocking: entry points and YAML files are read
    names = await asyncio.to_thread(connectors.available)
    forms = await asyncio.to_thread(edit.form_descriptions, config)
    return p.Connectors(
        connectors=names, forms=[p.FormDescription.from_dict(form) for form in forms]
    )
