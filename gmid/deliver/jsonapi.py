"""A JSON API over HTTPS for a destination: bounded answers, the server's own words, no secret.

Every request has the delivery's deadline (at most REQUEST_TIMEOUT each); an answer is read up to
MAX_ANSWER bytes; the CA of `ca_bundle` is given with each request (a session's own `verify` would
lose to $REQUESTS_CA_BUNDLE). A 400 raises Refused with the server's words, for the caller to
judge; every other failure is a DeliveryFailed whose message has the server's words with the
secrets in `secrets` replaced by "[secret]".
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import requests

from gmid.deliver.base import DeliveryFailed

MAX_ANSWER = 1_000_000  # bytes of one answer; a JSON API's are a few KB
REQUEST_TIMEOUT = 30.0  # seconds, at most, for one request (less when the deadline is closer)


class Refused(Exception):
    """The server refused a request as invalid (400); the message is its words."""


class JsonApi:
    """A JSON API at `url` (no trailing slash); `what` names it in messages ("paperless")."""

    def __init__(self, what: str, url: str, ca_bundle: Path | None) -> None:
        self.what = what
        self.url = url
        self.session = requests.Session()
        self.verify: str | bool = str(ca_bundle) if ca_bundle else True
        self.secrets: list[str] = []  # scrubbed from every message; cleared by a 401 or 403

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, params: dict[str, str], deadline: float) -> dict:
        """GET path; its JSON object."""
        answer = self.call("GET", path, deadline, params=params)
        if not isinstance(answer, dict):
            raise DeliveryFailed(f"{self.what} answered {path} with no JSON object")
        return answer

    def call(self, method: str, path: str, deadline: float, **kwargs: Any) -> Any:
        """One request; its JSON answer. Refused for a 400, DeliveryFailed for the rest."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeliveryFailed(f"{self.what}: the delivery's time ran out")
        try:
            with self.session.request(
                method,
                self.url + path,
                timeout=min(left, REQUEST_TIMEOUT),
                stream=True,
                verify=self.verify,
                **kwargs,
            ) as response:
                body = read(response, self.what)
        except requests.exceptions.SSLError as e:
            raise DeliveryFailed(f"{self.what} at {self.url}: TLS: {tls_reason(e)}") from None
        except requests.RequestException as e:
            raise DeliveryFailed(
                f"{self.what} at {self.url} cannot be reached: {reason(e)}"
            ) from None
        return self._answer(response, body)

    def _answer(self, response: requests.Response, body: bytes) -> Any:
        status = response.status_code
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        text = words(data) if data is not None else body[:300].decode(errors="replace")
        text = self.scrub(text)
        if 200 <= status < 300 and data is not None:
            return data
        if status == 400:
            raise Refused(text)
        if status in (401, 403):
            self.secrets = []  # resolved again next time: the secret may have been changed
            raise DeliveryFailed(
                f"{self.what} refused the login ({status}): {text}", permanent=True
            )
        retry = response.headers.get("Retry-After", "")
        raise DeliveryFailed(
            f"{self.what} answered {status}: {text or response.reason}",
            permanent=status in (404, 405, 413),
            retry_after=float(retry) if retry.isdigit() else None,
        )

    def scrub(self, text: str) -> str:
        """The text on one line, bounded, with every secret replaced."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "[secret]")
        return " ".join(text.split())[:500]


def read(response: requests.Response, what: str) -> bytes:
    """The body, at most MAX_ANSWER bytes."""
    chunks, size = [], 0
    for chunk in response.iter_content(65536):
        size += len(chunk)
        if size > MAX_ANSWER:
            raise DeliveryFailed(f"{what} sent an answer over {MAX_ANSWER} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def words(data: Any) -> str:
    """The message in a JSON answer: {"detail": ...}, {"field": ["..."]}, ["..."]."""
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return "; ".join(words(item) for item in data)
    if isinstance(data, dict):
        if "detail" in data:
            return words(data["detail"])
        return "; ".join(
            f"{key}: {words(value)}" if key != "non_field_errors" else words(value)
            for key, value in data.items()
        )
    return str(data)


def reason(error: BaseException) -> str:
    """The innermost reason of a requests error ("[Errno 111] Connection refused")."""
    inner = error
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = str(getattr(inner, "reason", None) or inner)
    return text.split(": ", 1)[-1] if "object at 0x" in text else text


def tls_reason(error: BaseException) -> str:
    """What TLS found wrong, e.g. "certificate verify failed: self-signed certificate"."""
    inner: BaseException | None = error
    while inner is not None:
        if isinstance(inner, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {inner.verify_message}"
        if isinstance(inner, ssl.SSLError):
            return str(inner.reason or inner)
        nested = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        inner = inner.__context__ or inner.__cause__ or nested
    return reason(error)
