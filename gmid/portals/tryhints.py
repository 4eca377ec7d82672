"""What a trial (`gmid try`) says at the first problem: the description's option to change, and
where to look. The connector's messages name the option already ("documents.rows: selector
... matched nothing"); this finds it in them and adds a hint for the person writing the
description."""

from __future__ import annotations

import re

from gmid.errors import (
    GmidError,
    PortalChanged,
    PortalUnavailable,
    SessionExpired,
    WrongCredentials,
)

_OPTION = re.compile(
    r"(?<![\w.])((?:start|login|code|captcha|captcha_widget|documents|headers)(?:\.[\w-]+)*)"
    r"(?=[:\s,]|$)"
)
_INSPECT = "in the browser, right-click it and choose Inspect"

# The hints, by option; the longest option that starts the one named wins.
HINTS = {
    "start": "the address of the portal's login page, as the browser shows it",
    "headers": "the headers the browser sends to the portal's API (its network tab)",
    "login": "compare the saved page with the login page in the browser",
    "login.form": (
        f"a selector of the login form or of an element in it ({_INSPECT}); a login page "
        "built by JavaScript shows gmid no form: then the portal has a login API (login.type: json)"
    ),
    "login.fields": f"the name= of the input ({_INSPECT})",
    "login.failure": (
        "the portal refused the user name or password: check them; if they are right, "
        "login.failure matches something the page shows anyway"
    ),
    "login.success": (
        "a selector only a logged-in page matches, such as the logout link "
        "(a[href*=logout]); check that the saved page is the page after the login"
    ),
    "code": f"the code page's form and input, from the browser after a login ({_INSPECT})",
    "captcha": "the captcha image's selector and the input its answer goes in",
    "documents.pages": "the address of the page (or API) that lists the invoices, once logged in",
    "documents.rows": (
        "a selector that matches each row of the list (table.invoices tbody tr, div.card); "
        "for a JSON list, the JMESPath of the list in the answer (data.items); the saved page "
        "is what gmid got"
    ),
    "documents.fields": (
        "values are read inside each row: a selector relative to the row, or a path into "
        "the row's JSON"
    ),
    "documents.download": (
        "the link to the file itself (a[href$='.pdf']), or the path of its URL in the row; "
        "a link to a page about the invoice needs documents.detail"
    ),
    "documents.next": "the link to the next page, or the next URL or token in the answer",
    "documents.empty": "what the portal shows when it lists no documents at all",
    "documents.detail": "what the page each row links to has: its download link and fields",
    "documents.before": "the requests the browser makes between the login and the list",
}

_BY_OUTCOME = {
    PortalUnavailable: (
        None,
        "the portal did not answer, or answered with an error: try again later, and check "
        "that start is the portal's address",
    ),
    SessionExpired: (
        "login.success",
        "the list asked for a login again: the login did not really succeed (login.success "
        "matches pages that are not logged in), or documents.pages is not the portal's own",
    ),
}


def option_of(message: str, portal: str) -> str | None:
    """The description's option a connector's message names first, if any."""
    found = _OPTION.search(message.removeprefix(f"{portal}: "))
    return found.group(1) if found else None


def hint_for(option: str | None) -> str | None:
    """The hint for an option: the one of the longest option it starts with."""
    if option is None:
        return None
    parts = option.split(".")
    for n in range(len(parts), 0, -1):
        hint = HINTS.get(".".join(parts[:n]))
        if hint is not None:
            return hint
    return None


def problem(error: GmidError, portal: str) -> tuple[str | None, str | None]:
    """The option to change and a hint for the first problem of a trial."""
    if isinstance(error, WrongCredentials):
        option = option_of(str(error), portal) or "login.failure"
        return option, hint_for("login.failure")
    option = option_of(str(error), portal)
    if option is None:
        for kind, (named, hint) in _BY_OUTCOME.items():
            if isinstance(error, kind):
                return named, hint
        if isinstance(error, PortalChanged) and error.selector:
            return None, f"the selector {error.selector!r} found nothing on the saved page"
    return option, hint_for(option)
