"""What a list needs beyond its pages and rows: steps before it, periods, a download form.

- `documents.before`: requests made after the login and before the list (switch to another
  account, choose a customer number, accept a notice), each `{get: URL}` or
  `{form: SELECTOR, fields: {...}, page: URL}`;
- `documents.periods` (connectors/form/periods.py), whose `{year}`/`{month}` go in the pages
  and in these steps;
- `download: {form: SELECTOR}`: a document fetched by submitting its row's form.

Only reading and checking here; connectors/form/before.py runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.form import periods as p
from connectors.form.values import Checker
from gmid.errors import quoted

MAX_STEPS = 10
STEP_KEYS = ("get", "form", "page", "fields")


@dataclass(frozen=True)
class BeforeStep:
    """One request before the list: a page to open, or a form to submit (on `page`, or on the
    page the previous step ended on)."""

    path: str  # "documents.before[0]", for messages
    get: str | None = None
    form: str | None = None
    page: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def texts(self) -> dict[str, str]:
        """The step's texts that may hold placeholders, by option path."""
        texts = {f"{self.path}.{key}": getattr(self, key) for key in ("get", "page")}
        texts.update({f"{self.path}.fields.{name}": value for name, value in self.fields})
        return {path: text for path, text in texts.items() if text is not None}

    @property
    def periodic(self) -> bool:
        """Whether the step depends on the period (it is then made again for each)."""
        return any(p.uses(text) for text in self.texts().values())


def read_extras(
    c: Checker, m: Mapping[str, Any], pages: list[str], html: bool = True
) -> dict[str, Any]:
    """Read `periods`, `before` and a `download.form` of `documents` (the mapping `m`), as
    keyword arguments of ListSpec, and check where the period placeholders are."""
    periods = p.read_periods(c, m["periods"]) if "periods" in m else None
    before = read_before(c, m["before"]) if "before" in m else ()
    many = isinstance(m.get("pages"), list)
    texts = {
        (f"documents.pages[{i}]" if many else "documents.pages"): t for i, t in enumerate(pages)
    }
    for step in before:
        texts.update(step.texts())
    p.check_placeholders(c, periods, texts)
    if not html:  # a JSON list's download is read by connectors/form/jsonspec.py
        return {"periods": periods, "before": before}
    download_form = None
    if is_form_download(m.get("download")):
        download_form = read_download_form(c, m["download"])
        if "id" not in (m.get("fields") or {}):
            c.problem(
                "documents.download.form",
                "needs documents.fields.id: the form's address is the same for every document",
            )
    return {"periods": periods, "before": before, "download_form": download_form}


def is_form_download(value: Any) -> bool:
    """Whether `documents.download` is a form to submit (`{form: ...}`), not a link."""
    return isinstance(value, Mapping) and "form" in value


def read_before(c: Checker, value: Any) -> tuple[BeforeStep, ...]:
    """Read `documents.before`: a list of at most MAX_STEPS steps."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STEPS:
        c.problem(
            "documents.before",
            f"expected a list of 1 to {MAX_STEPS} steps, e.g. [{{get: /switch}}]",
        )
        return ()
    steps = []
    for i, item in enumerate(value):
        step = _step(c, item, f"documents.before[{i}]", first=i == 0)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _step(c: Checker, value: Any, path: str, first: bool) -> BeforeStep | None:
    m = c.mapping(value, path, STEP_KEYS)
    if isinstance(value, Mapping) and ("get" in m) == ("form" in m):
        c.problem(path, "give one of `get: URL` or `form: SELECTOR`")
        return None
    for key in ("page", "fields"):
        if key in m and "get" in m:
            c.problem(f"{path}.{key}", "only with `form:` (a `get:` step opens its URL)")
    if "form" in m and "page" not in m and first:
        c.problem(f"{path}.page", "missing: the page that has the form, e.g. /account")
    step = BeforeStep(
        path=path,
        get=_address(c, m.get("get"), f"{path}.get"),
        form=c.selector(m.get("form"), f"{path}.form"),
        page=_address(c, m.get("page"), f"{path}.page"),
        fields=c.pairs(m.get("fields"), f"{path}.fields"),
    )
    return step if step.get is not None or step.form is not None else None


def _address(c: Checker, value: Any, path: str) -> str | None:
    text = c.text(value, path)
    if text is not None and urlsplit(text).scheme not in ("", "http", "https"):
        c.problem(path, f"expected a web address (https://... or /path), got {quoted(text)}")
        return None
    return text


def read_download_form(c: Checker, value: Mapping[str, Any]) -> str | None:
    """Read `download: {form: SELECTOR}`: the row's form that hands out its document."""
    m = c.mapping(value, "documents.download", ("form",))
    return c.selector(m.get("form"), "documents.download.form")
