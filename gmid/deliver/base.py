"""The contract every destination keeps: one Delivery in, a remote reference out, or a failure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gmid.errors import GmidError


@dataclass(frozen=True)
class Delivery:
    """One document going to one destination."""

    key: str  # stable per document and destination: f"{sha256}:{destination}"
    path: Path  # the archived file (read it, never change it)
    name: str  # the archive file name, e.g. "2026-03-04 Telekom 4711.pdf"
    media_type: str
    sha256: str
    fields: Mapping[str, str | None]  # company, date, number, amount, currency, kind, ...


class DeliveryFailed(GmidError):
    """A delivery did not happen; the message has the destination's own words, no secret."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Destination(Protocol):
    """Where documents go; `deliver` is blocking and idempotent per Delivery.key."""

    name: str

    def deliver(self, item: Delivery, deadline: float) -> str: ...

    def close(self) -> None: ...
