"""The challenge broker: portal runs wait here for a one-time code, a captcha or an approval.

A captcha is an image to read ("captcha") or a widget such as reCAPTCHA whose token the user
gets by solving it in a browser ("token": the challenge carries the widget, its site key and
the page's URL).

A connector runs in a worker thread; when its portal asks for a code it calls `ask()`, which
blocks that thread until the user answers through the control socket (`answer()`, called from
the daemon's event loop, only sets state and returns), a stored TOTP secret answers at once, or
the challenge expires. Answers and TOTP codes are never logged nor published.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp

from connectors.base import ApprovalRequest, CaptchaRequest, CodeRequest, TokenRequest
from gmid.errors import ChallengeExpired
from gmid.events import EventBus

logger = logging.getLogger(__name__)

DEFAULT_EXPIRY = 600.0
# A code the portal sent by SMS or e-mail is not the one a TOTP secret computes.
_SENT_MEDIA = frozenset({"sms", "email"})
_IMAGE_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/svg+xml": "svg",
}


@dataclass
class Challenge:
    """One question a portal asks, waiting for its answer."""

    id: str
    portal: str
    kind: str  # "code" | "captcha" | "token" | "approval"
    prompt: str
    medium: str  # sms | email | app | unknown for codes; "" otherwise
    created_at: datetime
    expires_at: datetime
    retry_message: str | None = None
    image_path: str | None = None
    media_type: str | None = None
    widget: str | None = None  # tokens: recaptcha | hcaptcha | turnstile
    site_key: str | None = None
    page_url: str | None = None  # where the user solves it
    response_field: str | None = None  # the field the widget fills in the browser

    def to_dict(self) -> dict[str, Any]:
        """Return the challenge as JSON-friendly data for the socket (the image by its path)."""
        left = (self.expires_at - datetime.now(UTC)).total_seconds()
        return {
            "id": self.id,
            "portal": self.portal,
            "kind": self.kind,
            "prompt": self.prompt,
            "medium": self.medium,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "seconds_left": max(0, round(left)),
            "retry_message": self.retry_message,
            "image_path": self.image_path,
            "media_type": self.media_type,
            "widget": self.widget,
            "site_key": self.site_key,
            "page_url": self.page_url,
            "response_field": self.response_field,
        }


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
        self._last_totp: dict[str, str] = {}  # per portal: the TOTP code given last

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

        A code request is answered at once by `totp` when given, unless the portal just
        refused the very code it computes (then a human is asked). Raises ChallengeExpired
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
            challenge.image_path = str(self._save_image(challenge.id, request))
        challenge.retry_message = request.retry_message
        waiter = self._register(challenge, expiry)
        try:
            while not waiter.wake.is_set():
                remaining = waiter.deadline - self._clock()
                if remaining <= 0:
                    break
                waiter.wake.wait(remaining)
        finally:
            answer = self._finish(waiter)
            self._remove_image(challenge)
        if answer is None:
            raise self._ended(waiter, expiry)
        self._events.publish("challenge.answered", **_summary(challenge))
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
            self._events.publish("challenge.expired", **_summary(challenge), reason="error")
            raise
        self._finish(waiter)
        if not approved:
            raise self._ended(waiter, expiry)
        self._events.publish("challenge.answered", **_summary(challenge))
        logger.info("login of %s approved (challenge %s)", portal, challenge.id)

    # -- loop side (never blocks) ------------------------------------------------------------

    def pending(self) -> list[Challenge]:
        """Return the pending challenges, oldest first."""
        with self._lock:
            return [waiter.challenge for waiter in self._waiting.values()]

    def answer(self, key: str, answer: str) -> Challenge:
        """Answer the challenge with this id, or the only one pending for this portal.

        Raises LookupError when no challenge (or more than one) matches, ValueError for an
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
                answer = _cleaned(challenge.kind, answer)
                del self._waiting[challenge.id]
                waiter.answer = answer
            waiter.wake.set()
        return challenge

    def cancel(self, portal: str | None = None) -> int:
        """Unblock the waiters (all, or one portal's) and return how many.

        Each raises ChallengeExpired; for daemon shutdown or a removed portal.
        """
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
        """Return the TOTP code for a code request, or None when a human must answer."""
        if request.medium in _SENT_MEDIA:
            return None
        code = totp().strip()
        with self._lock:
            # The same code again means the same 30 s window: the portal would refuse it
            # again, and asking in a loop could lock the account.
            if request.retry_message and self._last_totp.get(portal) == code:
                logger.info("%s refused the TOTP code; asking for one by hand", portal)
                return None
            self._last_totp[portal] = code
        logger.info("code for %s answered from its TOTP secret", portal)
        return code

    def _find(self, key: str) -> _Waiter:
        """Return the waiter of a challenge id, or of a portal's only challenge (lock held)."""
        if key in self._waiting:
            return self._waiting[key]
        matches = [w for w in self._waiting.values() if w.challenge.portal == key]
        if not matches:
            raise LookupError(f"no pending challenge for {key}")
        if len(matches) > 1:
            raise LookupError(f"portal {key} has {len(matches)} pending challenges: give the id")
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
        self._events.publish("challenge.expired", **_summary(challenge), reason=reason)
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

    def _save_image(self, id_: str, request: CaptchaRequest) -> Path:
        """Write the captcha image (0600, in a 0700 folder) for the TUI or CLI to show."""
        self._image_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._image_dir, 0o700)
        media_type = request.media_type.split(";")[0].strip().lower()
        path = self._image_dir / f"{id_}.{_IMAGE_EXTENSIONS.get(media_type, 'bin')}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(request.image)
        return path

    def _remove_image(self, challenge: Challenge) -> None:
        if challenge.image_path is None:
            return
        try:
            os.unlink(challenge.image_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("cannot remove captcha image %s: %s", challenge.image_path, exc)


def _cleaned(kind: str, answer: str) -> str:
    """An answer as the portal wants it; ValueError if nothing is left."""
    if kind in ("code", "token"):
        # Apps and SMS show codes as "123 456"; portals want the digits. A token has no
        # spaces either, and a terminal may break a long paste into lines.
        answer = "".join(answer.split())
    if kind == "token" and len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in "'\"":
        answer = answer[1:-1]  # as a browser's console prints it: '03AFcW...'
    if not answer:
        raise ValueError("the answer is empty")
    return answer


def _summary(challenge: Challenge) -> dict[str, str]:
    return {"id": challenge.id, "portal": challenge.portal, "kind": challenge.kind}


def _duration(seconds: float) -> str:
    """Say a duration the way a user reads it: "10 min", "90 s", "0.3 s"."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def totp_for(secret: str) -> Callable[[], str]:
    """Return a function giving the current TOTP code of a base32 secret.

    Accepts the secret as portals print it (spaces, dashes, lower case). A malformed secret
    raises ValueError; the message never contains the secret.
    """
    cleaned = "".join(secret.split()).replace("-", "").upper().rstrip("=")
    try:
        key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except (binascii.Error, ValueError):
        raise ValueError(
            "the TOTP secret is not valid base32 (letters A-Z and digits 2-7)"
        ) from None
    if not key:
        raise ValueError("the TOTP secret is empty")
    # pyotp >= 2.12 refuses keys under 112 bits, yet portals hand out 80-bit ones (16
    # characters). HMAC pads a key shorter than its block with zero bytes, so the key padded
    # to 20 bytes gives the very same codes.
    return pyotp.TOTP(base64.b32encode(key.ljust(20, b"\0")).decode()).now
