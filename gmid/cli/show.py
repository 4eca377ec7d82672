"""The `gmid show` command: one document, every field and where it came from, its check, its
sources and its path; with --html or --text, its e-invoice rendered for a reader."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path

from gmid.cli.common import Clock, clock, command, with_client
from gmid.control import protocol as p
from gmid.control.size import human_size
from gmid.documents.codes import clean
from gmid.errors import GmidError

# The index's fields in the order a reader looks for them, with their names for people.
LABELS = {
    "kind": "kind",
    "number": "number",
    "date": "date",
    "company": "company",
    "seller": "seller",
    "seller_vat_id": "seller VAT ID",
    "buyer": "buyer",
    "net_total": "net total",
    "tax_total": "tax total",
    "amount": "gross total",
    "currency": "currency",
    "due_date": "due date",
    "iban": "IBAN",
}
ORIGINS = {
    "einvoice": "the e-invoice XML",
    "text": "the document's text",
    "portal": "the portal",
    "mail": "the mail",
}


def cmd_show(args: argparse.Namespace) -> int:
    if args.output and not (args.html or args.text):
        raise GmidError("-o writes a rendering: give --html or --text with it")
    if args.html or args.text:
        return _rendered(args)
    details, times = asyncio.run(with_client(args, lambda c: _details(c, args.id)))
    if args.json:
        print(json.dumps(details.to_dict(), indent=2, ensure_ascii=False))
        return 0
    for line in describe(details, times):
        print(line)
    return 0


async def _details(client, doc_id: int) -> tuple[p.DocumentDetails, Clock]:
    return await client.document(doc_id), await clock(client)


def describe(details: p.DocumentDetails, times: Clock) -> list[str]:
    """The lines `gmid show` prints of a document."""
    doc = details.document
    out = [f"document {doc.id}: {clean(doc.path)}", ""]
    rows = [("FIELD", "VALUE", "FROM")]
    known = dict(details.fields)
    for name in [*LABELS, *sorted(set(known) - set(LABELS))]:
        if name in known:
            value, origin = known[name].get("value", ""), known[name].get("from", "")
            rows.append((LABELS.get(name, name), clean(value), ORIGINS.get(origin, clean(origin))))
    out += _table(rows)
    out += ["", *_check(details.check, doc.read_version), ""]
    out.append(f"sources ({len(details.sources)}):")
    out += [f"  {line}" for line in _sources(details.sources, times)]
    out.append("")
    out.append(f"path           {clean(details.path)}")
    if details.xml_path:
        out.append(f"e-invoice XML  {clean(details.xml_path)}")
    out.append(f"file           {doc.media_type}, {human_size(doc.size)}, sha256 {doc.sha256}")
    out.append(times.note())
    return out


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    if len(rows) == 1:
        return ["no field read yet"]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() for row in rows]


def _check(check: p.DocumentCheck | None, read_version: int) -> list[str]:
    if check is None and not read_version:
        return ["check: none yet: the document is not read yet (the daemon reads it; gmid reindex)"]
    if check is None:
        return ["check: none (no e-invoice XML)"]
    if check.ok:
        return ["check: the e-invoice passed every check (schema, sums, required fields)"]
    n = len(check.problems)
    return [
        f"check: {n} problem{'s' if n != 1 else ''}",
        *(f"  - {clean(problem)}" for problem in check.problems),
    ]


def _sources(sources: list[p.DocumentSource], times: Clock) -> list[str]:
    lines = []
    for s in sources:
        parts = [times.at(s.received_at), s.source]
        if s.source_name != s.source:
            parts.append(clean(s.source_name))
        if s.original_name:
            parts.append(f"as {clean(s.original_name)!r}")
        if s.ref:
            parts.append(f"ref {clean(s.ref)}")
        if s.message_id:
            parts.append(f"message {clean(s.message_id)}")
        lines.append("  ".join(parts))
    return lines or ["none recorded"]


def _rendered(args: argparse.Namespace) -> int:
    fmt = "text" if args.text else "html"
    width = args.width or max(40, min(shutil.get_terminal_size((80, 24)).columns, 200))
    # A document without one is an error the daemon words: "document 7 has no e-invoice XML".
    rendering = asyncio.run(with_client(args, lambda c: c.render_document(args.id, fmt, width)))
    if args.output:
        target = Path(args.output).expanduser()
        try:
            target.write_text(rendering.content, encoding="utf-8")
        except OSError as e:
            raise GmidError(f"cannot write {target}: {e.strerror}") from None
        print(f"wrote {target}" + (": open it in a browser" if fmt == "html" else ""))
        return 0
    sys.stdout.write(rendering.content)
    return 0


def add_show_command(sub, common: argparse.ArgumentParser) -> None:
    """Register `gmid show` on the `gmid` parser."""
    p_ = command(
        sub,
        "show",
        "one document: every field and where it came from, its check, sources and path",
        "gmid show 42 --html -o invoice.html",
        parents=[common],
        description=(
            "Show one archived document (its ID is in `gmid documents --json`): every field "
            "and where it came from, the e-invoice check, every way it came, and its path. "
            "With --html or --text, its e-invoice (an XRechnung or Factur-X XML) rendered "
            "for reading."
        ),
    )
    p_.add_argument("id", type=int, help="the document's ID")
    how = p_.add_mutually_exclusive_group()
    how.add_argument("--html", action="store_true", help="the e-invoice as an HTML page")
    how.add_argument("--text", action="store_true", help="the e-invoice as text")
    how.add_argument("--json", action="store_true", help="machine-readable output")
    p_.add_argument(
        "--width",
        type=int,
        metavar="N",
        help="with --text: at most N columns (default: the terminal's)",
    )
    p_.add_argument(
        "-o", "--output", metavar="FILE", help="with --html or --text: write to FILE, not stdout"
    )
    p_.set_defaults(func=cmd_show)
