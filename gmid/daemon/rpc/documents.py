"""The control methods `documents.list` (a page of the archive's index, newest first, filtered
or searched) and `documents.show` (one document: every field, where it came from, its check,
its sources and its path)."""

from __future__ import annotations

import asyncio
from datetime import datetime, tzinfo
from typing import Any

from gmid.control import protocol as p
from gmid.daemon.rpc import params as check
from gmid.daemon.rpc.params import InvalidParams, Params
from gmid.daemon.rpc.server import Connection
from gmid.daemon.rpc.services import Services
from gmid.errors import NotFound


async def documents_list(s: Services, params: Params, conn: Connection) -> p.DocumentPage:
    """A page of archived documents: by company, source, a text, received since a day."""
    filters = document_filters(params, s.daemon.config.tz)
    limit = check.whole_number(params, "limit", 100, 1, 1000)
    offset = check.whole_number(params, "offset", 0, 0)
    index = s.index

    def query() -> tuple[list, int]:
        return index.list(**filters, limit=limit, offset=offset), index.count(**filters)

    loop = asyncio.get_running_loop()
    docs, total = await loop.run_in_executor(s.daemon.executor, query)
    return p.DocumentPage(
        documents=[p.Document.from_dict(d.to_dict()) for d in docs],
        total=total,
        offset=offset,
        limit=limit,
    )


async def documents_show(s: Services, params: Params, conn: Connection) -> dict[str, Any]:
    """Index.details() of one document, plus "path": the absolute path of its file."""
    doc_id = check.whole_number(params, "id", 0, 1)
    index = s.index
    loop = asyncio.get_running_loop()
    details = await loop.run_in_executor(s.daemon.executor, index.details, doc_id)
    if details is None:
        raise NotFound(f"no document {doc_id}")
    assert s.daemon.archive is not None
    root = s.daemon.archive.root
    details["path"] = str(root / details["document"]["path"])
    if details["xml_path"]:
        details["xml_path"] = str(root / details["xml_path"])
    return details


def document_filters(params: Params, tz: tzinfo) -> dict[str, Any]:
    """The index's filters a request gives: `since` the document's day, `received_since` a day
    (or time) of arrival in the config's zone."""
    filters: dict[str, Any] = {}
    for key in ("company", "source", "text", "search"):
        value = check.string(params, key)
        if value is not None:
            filters[key] = value
    for key in ("since", "received_since"):
        moment = _moment(params, key)
        if moment is not None:
            # A day, or a time without zone, means the config's time zone, as the user reads it.
            filters[key] = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    return filters


def _moment(params: Params, key: str) -> datetime | None:
    value = params.get(key)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidParams(f"{key} must be a date like 2026-01-31") from None
