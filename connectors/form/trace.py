"""What the form connector tells a trial (`gmid try`) of its steps, and nothing in a run.

The connector's modules call these at the places where they request a page, look for a
selector or a path, and read rows; each returns at once unless `ctx.trace.active` (a trial
watches), so that a run spends nothing on them. What is told is the connector's own reading
(its requests, `select`, `extract.read`), not a second one: a trial shows what a run would do.
The trial (gmid/portals/tryout.py) blanks the run's secrets in all of it before it is shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bs4 import Tag

from connectors.form import extract as x

if TYPE_CHECKING:
    import requests

    from connectors.base import PortalContext
    from connectors.form.spec import ListSpec
    from connectors.form.values import Probe, Value

FIRST = 3  # values shown of what a selector or path matched
LONGEST = 80  # characters shown of one value


def watch(ctx: PortalContext, session: requests.Session) -> None:
    """Tell every request the session sends: method, URL, status, type, size and time
    (a redirect's hops each, the size of a streamed download left to whoever reads it)."""
    if not ctx.trace.active:
        return
    send = session.send
    depth = [0]  # a redirect's hops are sent from within the first send: told by it

    def traced(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        depth[0] += 1
        try:
            response = send(request, **kwargs)
        except Exception as e:
            if depth[0] == 1:
                ctx.trace.step("request", method=request.method, url=request.url, error=str(e))
            raise
        finally:
            depth[0] -= 1
        if depth[0]:
            return response
        hops = 0.0
        for hop in response.history:
            hops += hop.elapsed.total_seconds()
            _request(ctx, hop, hop.elapsed.total_seconds(), None)
        size = None if kwargs.get("stream") else len(response.content)
        _request(ctx, response, max(0.0, time.monotonic() - started - hops), size)
        return response

    session.send = traced  # type: ignore[method-assign]


def _request(
    ctx: PortalContext, response: requests.Response, seconds: float, size: int | None
) -> None:
    declared = response.headers.get("Content-Length")
    if size is None and declared and declared.isdigit():
        size = int(declared)
    ctx.trace.step(
        "request",
        method=response.request.method,
        url=response.url,
        status=response.status_code,
        content_type=(response.headers.get("Content-Type") or "").split(";")[0].strip(),
        size=size,
        seconds=round(seconds, 3),
    )


def matched(
    ctx: PortalContext, option: str, expr: str | None, found: Iterable[Any], url: str | None = None
) -> None:
    """Tell what a selector or path matched: how many, and the first values."""
    if not ctx.trace.active:
        return
    found = list(found)
    values = [shown(item) for item in found[:FIRST]]
    ctx.trace.step("match", option=option, expr=expr, count=len(found), values=values, url=url)


def probe(ctx: PortalContext, probe: Probe | None, page: Any, url: str | None) -> None:
    """Tell what a page probe (login.success, login.failure, code.when...) found."""
    if not ctx.trace.active or probe is None:
        return
    if probe.url is not None and not x.matches(page, url, probe):
        ctx.trace.step("match", option=probe.path, expr=probe.describe(), count=0, url=url)
        return
    found = page.select(probe.selector) if probe.selector else [url or ""]
    matched(ctx, probe.path, probe.describe(), found, url)


def rows(
    ctx: PortalContext,
    option: str,
    expr: str,
    found: Any,
    spec: ListSpec,
    url: str | None = None,
    wrap: Callable[[Any], x.Record] | None = None,
) -> None:
    """Tell how many rows a selector or path matched, then what each value of the list
    (`spec`) read in them.

    `found` is the list of records, or (with `wrap`) of what each is made of; anything else
    is what a path found instead of a list.
    """
    if not ctx.trace.active:
        return
    if not isinstance(found, list):
        what = "nothing" if found is None else f"a {type(found).__name__}, not a list"
        ctx.trace.step("match", option=option, expr=expr, count=0, values=[what], url=url)
        return
    records = [wrap(item) for item in found] if wrap is not None else found
    first = [shown(getattr(r, "tag", None) or getattr(r, "data", None)) for r in records[:1]]
    ctx.trace.step("match", option=option, expr=expr, count=len(records), values=first, url=url)
    for name, value in values(spec).items():
        read = [x.read(record, value) for record in records]
        hits = [text for text in read if text is not None]
        ctx.trace.step(
            "match",
            option=value.path,
            expr=value.expr or value.selector or "(the row)",
            count=len(hits),
            of=len(records),
            values=[shown(text) for text in hits[:FIRST]],
            unread=[shown(text) for text in unread(name, value, hits)[:FIRST]] or None,
            url=url,
        )


def unread(name: str, value: Value, texts: list[str]) -> list[str]:
    """The texts a date or amount field found but cannot read as one (by its formats, its
    decimal mark): the document would have no date or amount."""
    if name == "date":
        return [text for text in texts if x.parse_date(text, value.formats) is None]
    if name == "amount":
        return [text for text in texts if x.parse_amount(text, value.decimal) is None]
    return []


def values(spec: ListSpec) -> dict[str, Value]:
    """The values a list reads in each row: its fields, and its download link if it has one."""
    found = dict(spec.fields)
    if spec.json is not None:
        link = spec.json.download_path
    else:
        link = None if spec.download_form else spec.download
    if link is not None:
        found["download"] = link
    return found


def note(ctx: PortalContext, text: str) -> None:
    """Tell a step in words."""
    if ctx.trace.active:
        ctx.trace.step("note", text=text)


def shown(item: Any) -> str:
    """A matched element or value as a short text: a form by its action, an element by its
    text (or its link), a JSON value as JSON."""
    if isinstance(item, Tag):
        if item.name == "form":
            text = f"<form {' '.join(f'{k}={v!r}' for k, v in _attrs(item))}>"
        else:
            text = item.get_text(" ", strip=True) or str(item.get("href") or f"<{item.name}>")
    elif isinstance(item, str):
        text = item
    else:
        text = json.dumps(item, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= LONGEST else text[: LONGEST - 1] + "…"


def _attrs(form: Tag) -> list[tuple[str, str]]:
    found = [(k, str(form.get(k))) for k in ("id", "name", "action", "method") if form.get(k)]
    return [(k, hide_query(v) if k == "action" else v) for k, v in found]


def hide_query(text: str) -> str:
    """A link (a form's action, a download's, the next page's) with the value of each query
    parameter hidden but those that tell pages apart: signed links and session ids live there."""
    if "?" not in text or any(c.isspace() for c in text):
        return text
    head, _, query = text.partition("?")
    base = "http://h/"
    return head + x.page_url(f"{base}?{query}").removeprefix(base)
