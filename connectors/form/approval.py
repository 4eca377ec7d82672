"""`approval:` a login confirmed in the portal's app, waited for by polling the page.

Some portals (Amazon's "approve the notification sent to your phone") show, after the login
form, a page that waits until the user taps "approve" in the app, and polls the server from
its script. gmid shows the portal's prompt as a challenge of kind `approval` and polls as that
script does: it submits the page's polling form (`form`), or opens the page again, every few
seconds, until the page no longer shows `when`. A refusal (`failure`) ends the run as **code
rejected** with the portal's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.base import ApprovalRequest
from connectors.form import extract as x
from connectors.form.values import Checker, Probe
from gmid.errors import CodeRejected

if TYPE_CHECKING:
    from bs4 import BeautifulSoup

DEFAULT_PROMPT = "Approve the login in the portal's app (a notification on your phone)"


@dataclass(frozen=True)
class ApprovalSpec:
    """How the waiting page is recognised, how it is polled, and what a refusal shows."""

    when: Probe
    form: str | None = None  # the polling form; None: the page is opened again
    prompt: Probe | None = None  # the portal's words ("we sent a notification to ...")
    failure: Probe | None = None  # the portal's words when the login was refused in the app


def read_approval(c: Checker, value: Any) -> ApprovalSpec | None:
    """Read `approval:` ({when, form, prompt, failure}; `form` alone also says `when`)."""
    if value is None:
        return None
    m = c.mapping(value, "approval", ("when", "form", "prompt", "failure"))
    form = c.selector(m.get("form"), "approval.form")
    when = c.probe(m.get("when"), "approval.when")
    if when is None and form is not None:
        when = Probe("approval.form", selector=form)
    elif when is None and "when" not in m:
        c.problem("approval", "give `when:` (or `form:`), how the waiting page is recognised")
        return None
    if when is None:
        return None
    return ApprovalSpec(
        when=when,
        form=form,
        prompt=c.probe(m.get("prompt"), "approval.prompt", selector_only=True),
        failure=c.probe(m.get("failure"), "approval.failure"),
    )


class ApprovalStep:
    """The form connector's wait for an approval in the portal's app (a mixin)."""

    spec: Any
    ctx: Any
    browser: Any
    page: BeautifulSoup

    def _approval_step(self) -> None:
        """Show the prompt and poll until the waiting page is gone (or the portal refuses)."""
        approval = self.spec.approval
        prompt = self._text(approval.prompt) or DEFAULT_PROMPT
        self.ctx.wait_approval(ApprovalRequest(prompt), self._approved)

    def _approved(self) -> bool:
        """One poll: the polling form submitted, or the page opened again; True once the
        page no longer waits."""
        approval = self.spec.approval
        if approval.form is None:
            self._open(self.browser.url)
        elif (form := x.find_form(self.page, approval.form, "input")) is not None:
            self._select(form)
            self._submit()
        else:
            raise self._changed(
                f"approval.form: selector {approval.form!r} found no form on the waiting page",
                selector=approval.form,
            )
        words = self._text(approval.failure)
        if words is not None:
            raise CodeRejected(
                f"{self.ctx.portal}: the login was refused in the portal's app",
                portal_message=words or None,
            )
        return not self._shows(approval.when)
