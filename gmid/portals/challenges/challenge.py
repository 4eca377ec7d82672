"""One challenge: what the socket shows of it, how its answer is cleaned, where its image is kept.

The broker (gmid/portals/challenges/broker.py) makes challenges and blocks the portal runs on them;
what is here needs no lock: the Challenge record, the answer as the portal wants it, the captcha
image file the TUI or CLI shows, and the codes of a stored TOTP secret. Answers and TOTP codes are
never logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp

from connectors.base import CaptchaRequest
from gmid.archive.fs import write_atomic
from gmid.control import protocol as p

logger = logging.getLogger(__name__)

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

    def info(self) -> p.ChallengeInfo:
        """Return the challenge as the control socket shows it (the image by its path)."""
        left = (self.expires_at - datetime.now(UTC)).total_seconds()
        return p.ChallengeInfo(
            id=self.id,
            portal=self.portal,
            kind=self.kind,
            prompt=self.prompt,
            medium=self.medium,
            created_at=self.created_at.isoformat(),
            expires_at=self.expires_at.isoformat(),
            seconds_left=max(0, round(left)),
            retry_message=self.retry_message,
            image_path=self.image_path,
            media_type=self.media_type,
            widget=self.widget,
            site_key=self.site_key,
            page_url=self.page_url,
            response_field=self.response_field,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the challenge's wire form as JSON-friendly data, as its events carry it."""
        return self.info().to_dict()


def summary(challenge: Challenge) -> dict[str, str]:
    """What events about the challenge's outcome carry: no prompt, no answer."""
    return {"id": challenge.id, "portal": challenge.portal, "kind": challenge.kind}


def clean_answer(kind: str, answer: str) -> str:
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


def save_image(folder: Path, id_: str, request: CaptchaRequest) -> Path:
    """Write the captcha image (0600, in a 0700 folder) for the TUI or CLI to show."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    media_type = request.media_type.split(";")[0].strip().lower()
    path = folder / f"{id_}.{_IMAGE_EXTENSIONS.get(media_type, 'bin')}"
    write_atomic(path, request.image, 0o600, replace=False)  # whole: the TUI may look early
    return path


def remove_image(challenge: Challenge) -> None:
    """Delete the captcha image of a challenge that has ended, if it has one."""
    if challenge.image_path is None:
        return
    try:
        os.unlink(challenge.image_path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("cannot remove captcha image %s: %s", challenge.image_path, exc)


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
