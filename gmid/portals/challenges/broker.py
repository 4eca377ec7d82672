"""The challenge broker: portal runs wait here for a one-time code, a captcha or an approval.

A captcha is an image to read ("captcha") or a widget such as reCAPTCHA whose token the user
gets by solving it in a browser ("token": the challenge carries the widget, its site key and
the page's URL).

A connector runs in a worker thread; when its portal asks for a code it calls `ask()`, which
blocks that thread until the user answers through the control socket (`answer()`, called from
the daemon's event loop, only sets state and returns), a stored TOTP secret answers at once, or
the challenge expires. Answers and TOTP codes are never logged nor published. The Challenge
record itself, the cleaning of answers, captcha image files and TOTP codes are
gmid/portals/challenges/challenge.py.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.base import ApprovalRequest, CaptchaRequest, CodeRequest, TokenRequest
from gmid.errors import ChallengeExpired, NotFound
from gmid.events import EventBus
from gmid.portals.challenges.challenge import (
    Challenge,
    clean_answer,
    remove_image,
    save_image,
    summary,
)

logger = logging.getLogger(__name__)

DEFAULT_EXPIRY = 600.0
TOTP_STEP = 30  # seconds a TOTP code is valid (RFC 6238's default, which portals use)
TOTP_POLL = 0.5  # how often the next window's code is looked for

# A code the portal sent by SMS or e-mail is not the one a TOTP secret computes.
_SENT_MEDIA = frozenset({"sms", "email"})


@dataclass
class _Waiter:
    """A pending challenge and the state its worker thread waits on."""

    challenge: Challenge
    deadline: float
    wake: threading.Event = field(default_factory=threading.Event)
    answer: str | None = None
    cancelled: bool = False


class ChallengeBroker:
    """Holds pending challenges; worker threads block on them, the event loop answers them."""

    def __init__(
        self,
        events: EventBus,
        *,
        image_dir: Path,
        expiry: float = DEFAULT_EXPIRY,
        notify: Callable[[Challenge], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._events = events
        self._image_dir = Path(image_dir)
        self._expiry = expiry
        self._notify = notify
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiter] = {}
        # per portal: the TOTP code given last, and whether it was already a second try
        self._last_totp: dict[str, tuple[str, bool]] = {}
        self._stopped = threading.Event()  # set by cancel() of every portal: the daemon stops

    # -- worker side (blocking) --------------------------------------------------------------

    def ask(
        self,
        portal: str,
        request: CodeRequest | CaptchaRequest | TokenRequest,
        *,
        totp: Callable[[], str] | None = None,
        expiry: float | None = None,
    ) -> str:
        """Block until the code, captcha or token is answered and return the answer (stripped).

        A code request is answered at once by `totp` when given; a refused code is followed
        by the next window's once, then a human is asked. Raises ChallengeExpired
        when nobody answers in time or the challenge is cancelled.
        """
        if isinstance(request, CodeRequest) and totp is not None:
            code = self._from_totp(portal, request, totp)
            if code is not None:
                return code
        expiry = self._expiry if expiry is None else expiry
        if isinstance(request, CodeRequest):
            challenge = self._new(portal, "code", request.prompt, request.medium, expiry)
        elif isinstance(request, TokenRequest):
            challenge = self._new(portal, "token", request.prompt, "", expiry)
            challenge.widget, challenge.site_key = request.widget, request.site_key
            challenge.page_url, challenge.response_field = request.page_url, request.field
        else:
            challenge = self._new(portal, "captcha", request.prompt, "", expiry)
            challenge.media_type = request.media_type
            challenge.image_path = str(save_image(self._image_dir, challenge.id, request))
        challenge.retry_message = request.retry_message
        if request.retry_message:  # the portal's words go to the user, not into the log
            logger.info("%s refused the last %s; asking again", portal, challenge.kind)
        waiter = self._register(challenge, expiry)
        try:
            while not waiter.wake.is_set():
                remaining = waiter.deadline - self._clock()
                if remaining <= 0:
                    break
                waiter.wake.wait(remaining)
        finally:
            answer = self._finish(waiter)
            remove_image(challenge)
        if answer is None:
            raise self._ended(waiter, expiry)
        self._events.publish("challenge.answered", **summary(challenge))
        logger.info("%s for %s answered (challenge %s)", challenge.kind, portal, challenge.id)
        return answer

    def wait_approval(
        self,
        portal: str,
        request: ApprovalRequest,
        poll: Callable[[], bool],
        *,
        interval: float = 3.0,
        expiry: float | None = None,
    ) -> None:
        """Call `poll` every `interval` seconds until it returns True (the user approved).

        The approval is listed as a pending challenge; answering it with "cancel" gives up at
        once, any other answer polls now. Raises ChallengeExpired when time runs out or it is
        cancelled; an exception from `poll` propagates once the challenge is removed.
        """
        expiry = self._expiry if expiry is None else expiry
        challenge = self._new(portal, "approval", request.prompt, "", expiry)
        waiter = self._register(challenge, expiry)
        approved = False
        try:
            while True:
                remaining = waiter.deadline - self._clock()
                if remaining <= 0:
                    break
                waiter.wake.wait(min(interval, remaining))
                # Cleared before reading `cancelled`: answer() sets the flag before the event.
                waiter.wake.clear()
                if waiter.cancelled:
                    break
                if poll():
                    approved = True
                    break
        except BaseException:
            self._finish(waiter)
            self._events.publish("challenge.expired", **summary(challenge), reason="error")
            raise
        self._finish(waiter)
        if not approved:
            raise self._ended(waiter, expiry)
        self._events.publish("challenge.answered", **summary(challenge))
        logger.info("login of %s approved (challenge %s)", portal, challenge.id)

    # -- loop side (never blocks) ------------------------------------------------------------

    def pending(self) -> list[Challenge]:
        """Return the pending challenges, oldest first."""
        with self._lock:
            return [waiter.challenge for waiter in self._waiting.values()]

    def answer(self, key: str, answer: str) -> Challenge:
        """Answer the challenge with this id, or the only one pending for this portal.

        Raises NotFound when no challenge (or more than one) matches, ValueError for an
        empty answer. An approval takes "cancel" to give up; any other answer polls at once.
        """
        answer = answer.strip()
        if not answer:
            raise ValueError("the answer is empty")
        with self._lock:
            waiter = self._find(key)
            challenge = waiter.challenge
            if challenge.kind == "approval":
                if answer.lower() == "cancel":
                    del self._waiting[challenge.id]
                    waiter.cancelled = True
            else:
                answer = clean_answer(challenge.kind, answer)
                del self._waiting[challenge.id]
                waiter.answer = answer
            waiter.wake.set()
        return challenge

    def cancel(self, portal: str | None = None) -> int:
        """Unblock the waiters (all, or one portal's) and return how many.

        Each raises ChallengeExpired; for daemon shutdown or a removed portal.
        """
        if portal is None:
            self._stopped.set()
        with self._lock:
            ids = [
                id_
                for id_, waiter in self._waiting.items()
                if portal is None or waiter.challenge.portal == portal
            ]
            for id_ in ids:
                waiter = self._waiting.pop(id_)
                waiter.cancelled = True
                waiter.wake.set()
        return len(ids)

    # -- inside --------------------------------------------------------------------------------

    def _from_totp(self, portal: str, request: CodeRequest, totp: Callable[[], str]) -> str | None:
        """Return the TOTP code for a code request, or None when a human must answer.

        Portals take each code once: one refused because it was just used (a login a moment
        ago) is followed by the next 30-second window's code, once; a second refusal, or a
        code that will not change, is for a human, as asking in a loop could lock the account.
        """
        if request.medium in _SENT_MEDIA:
            return None
        code = totp().strip()
        with self._lock:
            last, retried = self._last_totp.get(portal, (None, False))
        if request.retry_message:
            if retried:
                logger.info("%s refused the TOTP code once more; asking for one by hand", portal)
                return None
            if code == last:
                logger.info("%s refused the TOTP code; trying the next window's", portal)
                code = self._next_totp(totp, last)
                if code is None:
                    return None
        with self._lock:
            self._last_totp[portal] = (code, bool(request.retry_message))
        logger.info("code for %s answered from its TOTP secret", portal)
        return code

    def _next_totp(self, totp: Callable[[], str], last: str) -> str | None:
        """Wait for the code of the next window (at most one window); None if it does not
        change in time or the broker stops meanwhile."""
        deadline = time.monotonic() + TOTP_STEP + 2
        while time.monotonic() < deadline:
            if self._stopped.wait(TOTP_POLL):
                return None
            code = totp().strip()
            if code != last:
                return code
        return None

    def _find(self, key: str) -> _Waiter:
        """Return the waiter of a challenge id, or of a portal's only challenge (lock held)."""
        if key in self._waiting:
            return self._waiting[key]
        matches = [w for w in self._waiting.values() if w.challenge.portal == key]
        if not matches:
            raise NotFound(f"no pending challenge for {key}")
        if len(matches) > 1:
            raise NotFound(f"portal {key} has {len(matches)} pending challenges: give the id")
        return matches[0]

    def _new(self, portal: str, kind: str, prompt: str, medium: str, expiry: float) -> Challenge:
        now = datetime.now(UTC)
        with self._lock:
            id_ = secrets.token_hex(4)
            while id_ in self._waiting:
                id_ = secrets.token_hex(4)
        return Challenge(
            id=id_,
            portal=portal,
            kind=kind,
            prompt=prompt,
            medium=medium,
            created_at=now,
            expires_at=now + timedelta(seconds=expiry),
        )

    def _register(self, challenge: Challenge, expiry: float) -> _Waiter:
        """List the challenge, publish it and notify the user in the background."""
        waiter = _Waiter(challenge, self._clock() + expiry)
        with self._lock:
            self._waiting[challenge.id] = waiter
        self._events.publish("challenge.pending", **challenge.to_dict())
        logger.info(
            "%s asks for %s (challenge %s): %s",
            challenge.portal,
            "a code" if challenge.kind == "code" else f"a {challenge.kind}",
            challenge.id,
            challenge.prompt,
        )
        if self._notify is not None:
            threading.Thread(
                target=self._run_notify,
                args=(challenge,),
                name=f"gmid-notify-{challenge.id}",
                daemon=True,
            ).start()
        return waiter

    def _run_notify(self, challenge: Challenge) -> None:
        try:
            self._notify(challenge)
        except Exception:
            logger.exception("notifying challenge %s of %s failed", challenge.id, challenge.portal)

    def _finish(self, waiter: _Waiter) -> str | None:
        """Unlist the challenge; return its answer, or None when it expired or was cancelled."""
        with self._lock:
            self._waiting.pop(waiter.challenge.id, None)
            return waiter.answer

    def _ended(self, waiter: _Waiter, expiry: float) -> ChallengeExpired:
        """Publish the end of an unanswered challenge and return the error to raise."""
        challenge = waiter.challenge
        reason = "cancelled" if waiter.cancelled else "expired"
        self._events.publish("challenge.expired", **summary(challenge), reason=reason)
        portal = challenge.portal
        if reason == "cancelled":
            message = f"the {challenge.kind} request of {portal} was cancelled"
        elif challenge.kind == "code":
            message = f"no code entered for {portal} within {_duration(expiry)}"
        elif challenge.kind == "captcha":
            message = f"no captcha answer entered for {portal} within {_duration(expiry)}"
        elif challenge.kind == "token":
            message = f"no captcha token entered for {portal} within {_duration(expiry)}"
        else:
            message = f"the login to {portal} was not approved within {_duration(expiry)}"
        logger.info("%s (challenge %s)", message, challenge.id)
        return ChallengeExpired(message)


def _duration(seconds: float) -> str:
    """Say a duration the way a user reads it: "10 min", "90 s", "0.3 s"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
