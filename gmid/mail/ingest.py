"""E-mail ingest, shared by SMTP and IMAP: find the documents, file them, or quarantine."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gmid.archive.archive import Archive, Incoming, Stored
from gmid.archive.index import Index
from gmid.archive.naming import printable
from gmid.config.load import Company, Config
from gmid.errors import ArchiveError
from gmid.mail.parse import Document, ParsedMail, eml_document, parse_mail

logger = logging.getLogger(__name__)

UNKNOWN_COMPANY = "unknown"
EML = "message/rfc822"  # a mail kept whole


@dataclass(frozen=True)
class Mail:
    """One mail to ingest, with what its source knows about it.

    `company` overrides the one found from recipients and senders; `keep` picks which of the
    mail's documents are filed (an IMAP rule's attachment globs); without `eml_fallback` a mail
    with no documents is not kept whole even if the config says so.
    """

    raw: bytes = field(repr=False)
    source: str
    source_name: str
    recipients: Sequence[str] = ()
    envelope_from: str | None = None
    company: str | None = None
    keep: Callable[[Document], bool] | None = None
    eml_fallback: bool = True


@dataclass(frozen=True)
class ArchiveFailures:
    """Mails kept in the quarantine because the archive could not be written, since start."""

    mails: int = 0
    last_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class IngestResult:
    """What became of one mail."""

    company: str
    stored: tuple[Stored, ...]
    quarantined: str | None = None  # path of the quarantined raw mail, if any
    duplicate: bool = False  # the same mail (Message-ID and bytes) was ingested before
    archive_failed: bool = False  # the archive could not be written: kept in the quarantine
    reason: str | None = None  # why it was kept in the quarantine

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
        self._failures_lock = threading.Lock()
        self._whole_mails = threading.Lock()  # see ingest_many
        self.archive_failures = ArchiveFailures()

    def company_for(
        self, recipients: Iterable[str], senders: Iterable[str], delivered: Iterable[str] = ()
    ) -> str:
        """Pick the company: plus-address tag first, then the first sender a company claims.

        The tag is the envelope recipient's. A mail that came with an envelope but no tag in
        it is looked at as delivered before (`delivered`: fetchmail's `smtpname` rewrites the
        envelope recipient, the Delivered-To of the mailbox it fetched from keeps the tag);
        that too is the sender's choice, as a plus address is. Mail read from a mailbox has
        no envelope here: its company comes from its senders or the mailbox's rule.
        """
        by_norm = {_norm(c.name): c.name for c in self.config.companies}
        recipients = list(recipients)
        tagged = recipients
        if recipients and not any(split_plus(r)[1] for r in recipients):
            tagged = [*recipients, *delivered]
        for rcpt in tagged:
            _base, tag = split_plus(rcpt)
            tag = printable(tag or "")  # the sender chose it: it reaches the index and terminals
            if tag:
                return by_norm.get(_norm(tag), tag)
        for sender in senders:
            company = _match_sender(self.config.companies, sender)
            if company:
                return company.name
        return UNKNOWN_COMPANY

    def ingest(self, raw: bytes, **options: Any) -> IngestResult:
        """File the documents of one mail durably; quarantine what cannot be read.

        The options are those of Mail. Returns only after everything is on disk; raises only
        when even the quarantine could not be written, so that the caller answers with a
        temporary failure.
        """
        return self.ingest_many([Mail(raw, **options)])[0]

    def ingest_many(self, mails: Sequence[Mail]) -> list[IngestResult]:
        """File the documents of several mails as ingest() does one, in one archive batch."""
        received = datetime.now(UTC)
        plans: list[tuple[Mail, str, ParsedMail | None, list[Incoming]]] = []
        for mail in mails:
            try:
                parsed = parse_mail(mail.raw, types=self.config.ingest.types)
            except Exception:  # parse_mail should never raise; if it does, keep the mail
                logger.exception("could not parse a mail from %s", mail.source_name)
                plans.append((mail, UNKNOWN_COMPANY, None, []))
                continue
            company, incoming = self._plan(mail, parsed, received)
            plans.append((mail, company, parsed, incoming))
        whole = any(docs and docs[-1].media_type == EML for *_, docs in plans)
        # Mails kept whole are known by what they say, not their bytes: looking and filing
        # must be one step, or the same receipt from two sessions at once is kept twice.
        with self._whole_mails if whole else contextlib.nullcontext():
            known = self._known_mails(plans)
            try:
                stored = iter(self.archive.store_many([d for *_, docs in plans for d in docs]))
            except ArchiveError as exc:
                return self._keep_instead(plans, exc)
        results: list[IngestResult] = []
        for position, (mail, company, parsed, docs) in enumerate(plans):
            kept = tuple(next(stored) for _ in docs)
            if position in known:  # the same mail kept whole before, or earlier in this batch
                same = known[position]
                earlier = same if isinstance(same, Stored) else results[same].stored[-1]
                kept += (dataclasses.replace(earlier, created=False, restored=False),)
            for result in kept:
                if result.created and self.on_stored:
                    self.on_stored(result)
            quarantined = reason = None
            if parsed is None or parsed.problems:
                reason = "; ".join(parsed.problems) if parsed else "could not parse the mail"
                quarantined = self._quarantine(mail.raw, reason, mail.source, mail.source_name)
            # The same mail again is recognised by its documents' content (a mail kept whole,
            # by its Message-ID, company and date): nothing is written twice, and no per-mail
            # bookkeeping costs another fsync on this hot path.
            duplicate = bool(kept) and not any(s.created for s in kept)
            if company == UNKNOWN_COMPANY and kept:  # the archive named it after the document
                company = kept[0].document.company
            results.append(IngestResult(company, kept, quarantined, duplicate, reason=reason))
        return results

    def _keep_instead(
        self, plans: list[tuple[Mail, str, ParsedMail | None, list[Incoming]]], exc: ArchiveError
    ) -> list[IngestResult]:
        """Keep every mail of a batch the archive failed for in the quarantine, with why.

        A sender retrying a temporary failure would retry until it bounces while the archive
        stays broken (a read-only disk, a file where its folder belongs): the mail is kept
        durably at once instead, and the failure shows in `gmid status`. Raises (a temporary
        failure again) only when even the quarantine cannot be written.
        """
        logger.error(
            "the archive could not be written; keeping the mail in the quarantine: %s", exc
        )
        results = []
        for mail, company, parsed, _ in plans:
            problems = list(parsed.problems) if parsed else ["could not parse the mail"]
            reason = "; ".join([f"the archive could not be written: {exc}", *problems])
            path = self._quarantine(mail.raw, reason, mail.source, mail.source_name)
            with self._failures_lock:
                self.archive_failures = ArchiveFailures(
                    self.archive_failures.mails + 1, datetime.now(UTC), str(exc)
                )
            results.append(IngestResult(company, (), path, archive_failed=True, reason=reason))
        return results

    def _plan(
        self, mail: Mail, parsed: ParsedMail, received: datetime
    ) -> tuple[str, list[Incoming]]:
        """Pick the company and the documents to file of one parsed mail."""
        senders = list(parsed.senders)
        if mail.envelope_from:
            senders.append(mail.envelope_from.lower())
        company = mail.company or self.company_for(mail.recipients, senders, parsed.delivered_to)
        keep = mail.keep
        documents = [d for d in parsed.documents if keep is None or keep(d)]
        if (
            mail.eml_fallback
            and not parsed.documents
            and not parsed.problems
            and self.config.ingest.keep_mail_without_documents
        ):
            documents.append(eml_document(mail.raw))
        # A mail kept whole is dated by its Date header, on the config's calendar.
        day = parsed.date.astimezone(self.config.tz).date() if parsed.date else None
        return company, [
            Incoming(
                data=doc.data,
                media_type=doc.media_type,
                ext=doc.ext,
                source=mail.source,
                source_name=mail.source_name,
                company=company,
                original_name=doc.original_name,
                message_id=parsed.message_id,
                received_at=received,
                date=day if doc.kind == "eml" else None,
            )
            for doc in documents
        ]

    def _known_mails(
        self, plans: list[tuple[Mail, str, ParsedMail | None, list[Incoming]]]
    ) -> dict[int, Stored | int]:
        """Take out of the plans each mail kept whole that is known; return where it is known:
        its Stored when filed before, the plan position of the same mail earlier in the batch.
        """
        known: dict[int, Stored | int] = {}
        first: dict[tuple, int] = {}
        for position, (*_, docs) in enumerate(plans):
            if not docs or docs[-1].media_type != EML:
                continue
            eml = docs[-1]
            key = (eml.message_id, eml.company, eml.date)
            if eml.message_id and key in first:
                known[position] = first[key]
            elif before := self._kept(eml):
                known[position] = before
            else:
                first[key] = position
                continue
            docs.pop()
        return known

    def _kept(self, eml: Incoming) -> Stored | None:
        """The same mail kept whole before, found by its Message-ID, company and date.

        Its bytes are no guide: each MTA that relays a mail adds a Received line, so a receipt
        sent twice through Postfix (or fetched twice) differs in its first lines.
        """
        if not eml.message_id:
            return None
        row = self.index.kept_mail(eml.message_id, eml.company, eml.date)
        if row is None or self.archive.file_gone(row.sha256):
            return None  # a file gone is written again from this copy
        return Stored(row, False, self.archive.root / row.path)

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
