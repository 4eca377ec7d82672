"""A trial of a portal's description (`portal.try`) as lines of text, the same for the CLI
(`gmid try NAME`) and the TUI's portal dialog: each request, what each selector or path
matched, the rows as a table, and at the first problem the option to change and a hint."""

from __future__ import annotations

from gmid.control.protocol import TryReport, TryRow, TryStep

_COLUMNS = (("DATE", "date"), ("NUMBER", "number"), ("AMOUNT", "amount"), ("TITLE", "title"))
WIDEST = 40  # characters of a table cell


def size(n: int | None) -> str:
    """Bytes as a person reads them."""
    if n is None:
        return "?"
    if n < 1000:
        return f"{n} B"
    if n < 10**6:
        return f"{n / 1000:.1f} kB"
    return f"{n / 10**6:.1f} MB"


def step_line(step: TryStep) -> str:
    """One step of a trial as a line."""
    if step.kind == "request":
        if step.error:
            return f"{step.method} {step.url}  failed: {step.error}"
        ms = f"{step.seconds * 1000:.0f} ms" if step.seconds is not None else ""
        kind = step.content_type or "no content type"
        return f"{step.method} {step.url}  {step.status} {kind} {size(step.size)} {ms}".rstrip()
    if step.kind == "match":
        if step.of is not None:
            counted = f"{step.count} of {step.of} rows"
        else:
            counted = f"{step.count} match{'es' if step.count != 1 else ''}"
        values = ", ".join(f"«{v}»" for v in step.values)
        line = f"  {step.option}  {step.expr}: {counted}"
        line = f"{line}  {values}" if values else line
        if step.unread:
            what = "an amount" if (step.option or "").endswith("amount") else "a date"
            line += f"\n    not read as {what}: {', '.join(f'«{v}»' for v in step.unread)}"
        return line
    if step.kind == "download":
        return (
            f"downloaded {step.text}: {step.content_type}, {size(step.size)}, saved as {step.path}"
        )
    return f"  {step.text}"


def rows_table(rows: list[TryRow]) -> list[str]:
    """The rows listed as a table: their fields, and their id and link."""
    columns = [(head, key) for head, key in _COLUMNS if any(getattr(r, key) for r in rows)]
    columns += [("ID", "id"), ("LINK", "url")]
    cells = [[_cut(getattr(row, key) or "-") for _, key in columns] for row in rows]
    heads = [head for head, _ in columns]
    widths = [max(len(c) for c in column) for column in zip(heads, *cells, strict=False)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [heads, *cells]
    ]


def report_lines(report: TryReport) -> list[str]:
    """The whole trial, step by step, then its rows and how it ended."""
    lines = [f"{report.portal}: the login and the list, step by step (nothing is recorded)"]
    lines += [step_line(step) for step in report.steps]
    if report.rows:
        n = len(report.rows)
        more = " (the list goes on)" if report.more_rows else ""
        lines += ["", f"{n} document{'s' * (n != 1)} listed{more}:"]
        lines += [f"  {line}" for line in rows_table(report.rows)]
    lines.append("")
    said = f": {report.message}" if report.message else ""
    lines.append(f"{report.outcome}{said}")
    if report.portal_message:
        lines.append(f"  the portal said: «{report.portal_message}»")
    if report.option:
        lines.append(f"  the option to change: {report.option}")
    if report.hint:
        lines.append(f"  hint: {report.hint}")
    if report.page:
        lines.append(f"  the page as gmid got it: {report.page}")
    if report.downloads_dir and not any(s.kind == "download" for s in report.steps):
        lines.append(f"  nothing was downloaded into {report.downloads_dir}")
    return lines


def _cut(text: str) -> str:
    return text if len(text) <= WIDEST else text[: WIDEST - 1] + "…"
