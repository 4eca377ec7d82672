"""What the delivery tests share: a document as the outbox hands it to a destination."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from gmid.deliver.base import Delivery


def delivery(
    archive: Path,
    path: str = "Telekom/2026/2026-03-04 Telekom 4711.pdf",
    data: bytes = b"%PDF-1.4 invoice 4711\n%%EOF\n",
    *,
    destination: str = "out",
    attempt: int = 1,
    company: str = "Telekom",
) -> Delivery:
    """An archived document (its file written under archive) going to destination."""
    file = archive / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return Delivery(
        key=f"{sha}:{destination}",
        path=file,
        name=file.name,
        media_type="application/pdf",
        sha256=sha,
        fields={
            "company": company,
            "date": "2026-03-04",
            "number": "4711",
            "amount": "84.20",
            "currency": None,
            "kind": None,
            "source": "smtp",
            "source_name": "smtp",
            "title": file.stem,
            "received_at": "2026-03-05T08:00:00+00:00",
            "path": path,
        },
        attempt=attempt,
    )


def soon(seconds: float = 30) -> float:
    """A deadline that far ahead."""
    return time.monotonic() + seconds
