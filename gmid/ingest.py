"""E-mail ingest, shared by SMTP and IMAP: find the documents, file them, or quarantine."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gmid.archive import Archive, Incoming, Stored
from gmid.config import Company, Config
from gmid.index import Index
from gmid.mail import Document, eml_document, parse_mail

logger = logging.getLogger(__name__)

UNKNOWN_COMPANY = "unknown"


@dataclass(frozen=True)
class IngestResult:
    """What became of one mail."""

    company: str
    stored: tuple[Stored, ...]
    quarantined: str | None = None  # path of the quarantined raw mail, if any
    duplicate: bool = False  # the same mail (Message-ID and bytes) was ingested before

    @property
    def new_documents(self) -> int:
        return sum(1 for s in self.stored if s.created)


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def split_plus(address: str) -> tuple[str, str | None]:
    """Split `local+tag@domain` into (`local@domain`, tag); the tag is None without a plus."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower(), None
    base, plus, tag = local.partition("+")
    return f"{base}@{domain}".lower(), (tag or None) if plus else None


class Ingestor:
    """Turns raw mails into archived documents; blocking, safe to call from worker threads."""

    def __init__(
        self,
        config: Config,
        archive: Archive,
        index: Index,
        *,
        on_stored: Callable[[Stored], None] | None = None,
    ):
        self.config = config
        self.archive = archive
        self.index = index
        self.on_stored = on_stored

    def company_for(self, recipients: Iterable[str], senders: Iterable[str]) -> str:
        """Pick the company: plus-address tag first, then the first sender a company claims."""
        by_norm = {_norm(c.name): c.name for c in self.config.companies}
        for rcpt in recipients:
            _base, tag = split_plus(rcpt)
            if tag:
                return by_norm.get(_norm(tag), tag)
        for sender in senders:
            company = _match_sender(self.config.companies, sender)
            if company:
                return company.name
        return UNKNOWN_COMPANY

    def ingest(
        self,
        raw: bytes,
        *,
        source: str,
        source_name: str,
        recipients: Iterable[str] = (),
        envelope_from: str | None = None,
        company: str | None = None,
        keep: Callable[[Document], bool] | None = None,
        eml_fallback: bool = True,
    ) -> IngestResult:
        """File the documents of one mail durably; quarantine what cannot be read.

        `company` overrides the one found from recipients and senders; `keep` picks which of
        the mail's documents are filed (an IMAP rule's attachment globs); without `eml_fallback` a
        mail with no documents is not kept whole even if the config says so. Returns only after
        everything is on disk; raises only when even the quarantine could not be written, so
        that the caller answers with a temporary failure.
        """
        received = datetime.now(UTC)
        try:
            parsed = parse_mail(raw, types=self.config.ingest.types)
        except Exception as e:  # parse_mail should never raise; if it does, keep the mail
            logger.exception("could not parse a mail from %s", source_name)
            reason = f"could not parse the mail: {type(e).__name__}"
            path = self._quarantine(raw, reason, source, source_name)
            return IngestResult(UNKNOWN_COMPANY, (), quarantined=path)
        senders = list(parsed.senders)
        if envelope_from:
            senders.append(envelope_from.lower())
        company = company or self.company_for(recipients, senders)
        documents: list[Document] = [d for d in parsed.documents if keep is None or keep(d)]
        if (
            eml_fallback
            and not parsed.documents
            and not parsed.problems
            and self.config.ingest.keep_mail_without_documents
        ):
            documents.append(eml_document(raw))
        stored = []
        for doc in documents:
            incoming = Incoming(
                data=doc.data,
                media_type=doc.media_type,
                ext=doc.ext,
                source=source,
                source_name=source_name,
                company=company,
                original_name=doc.original_name,
                message_id=parsed.message_id,
                received_at=received,
            )
            result = self.archive.store(incoming)
            stored.append(result)
            if result.created and self.on_stored:
                self.on_stored(result)
        quarantined = None
        if parsed.problems:
            reason = "; ".join(parsed.problems)
            quarantined = self._quarantine(raw, reason, source, source_name)
        # The same mail again is recognised by its documents' content: nothing is written twice,
        # and no per-mail bookkeeping costs another fsync on this hot path.
        duplicate = bool(stored) and not any(s.created for s in stored)
        return IngestResult(company, tuple(stored), quarantined=quarantined, duplicate=duplicate)

    def _quarantine(self, raw: bytes, reason: str, source: str, source_name: str) -> str:
        return str(self.archive.quarantine(raw, reason, source=source, source_name=source_name))


def _match_sender(companies: Iterable[Company], address: str) -> Company | None:
    """Find the company claiming an address: an exact address wins, then the longest domain."""
    address = address.lower().strip()
    domain = address.rpartition("@")[2]
    best: tuple[int, Company] | None = None
    for company in companies:
        for pattern in company.senders:
            if pattern == address:
                return company
            want = pattern[1:] if pattern.startswith("@") else None
            matches = want and (domain == want or domain.endswith("." + want))
            if matches and (best is None or len(want) > best[0]):
                best = (len(want), company)
    return best[1] if best else None
