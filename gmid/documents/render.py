"""An e-invoice made readable: as one self-contained HTML page, and as plain text.

Both show what a reader of the paper invoice would look for: who sends it (name, address, VAT
ID) to whom, its number and dates, the lines, the VAT by rate, the totals, how and by when to
pay (IBAN), and what gmid's check found wrong. The sections are built once (`sections`) and
drawn twice.

Every value is the sender's: in HTML it is escaped, and the page carries no script and loads
nothing (its Content-Security-Policy forbids both, should a value ever get through); in text,
control characters (a terminal's escape sequences) and bidirectional overrides (which can turn
an IBAN around on screen) are replaced by U+FFFD in both.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass
from decimal import Decimal

from gmid.documents import codes
from gmid.documents.codes import clean
from gmid.documents.model import Address, EInvoice

_MAX_DIGITS = 30  # an amount of more digits is shown as written (1E+99999 is a valid Decimal)


def money(value: Decimal | None, currency: str | None = None) -> str:
    """An amount with at least two decimals ("473.00", "9.9125"), and its currency if given."""
    if value is None:
        return ""
    text = _plain(value, 2)
    return f"{text} {clean(currency)}" if currency else text


def number(value: Decimal | None) -> str:
    """A quantity or rate without trailing zeros: 20.0000 is "20", 7.50 is "7.5"."""
    return "" if value is None else _plain(value, 0)


def _plain(value: Decimal, least: int) -> str:
    if value.adjusted() > _MAX_DIGITS or value.as_tuple().exponent < -_MAX_DIGITS:
        return str(value)
    exponent = value.normalize().as_tuple().exponent
    places = max(least, -exponent) if isinstance(exponent, int) else least
    return f"{value:.{places}f}"


def address_lines(address: Address | None) -> list[str]:
    """An address as it is written on an envelope: the street lines, postcode and city, country."""
    if address is None:
        return []
    town = " ".join(clean(v) for v in (address.postcode, address.city) if v)
    return [*(clean(line) for line in address.lines), *(v for v in (town,) if v)] + (
        [codes.country(address.country)] if address.country else []
    )


@dataclass
class Sections:
    """What the page shows, section by section, as cleaned text."""

    title: str
    seller: list[str]
    buyer: list[str]
    details: list[tuple[str, str]]
    lines: list[tuple[str, str, str, str, str, str]]  # #, item, quantity, price, VAT, net
    taxes: list[tuple[str, str, str, str]]  # category, rate, taxable amount, tax
    totals: list[tuple[str, str]]
    payment: list[tuple[str, str]]
    problems: list[str]
    origin: str


def sections(inv: EInvoice) -> Sections:
    """The invoice's sections, every value cleaned and formatted."""
    kind = codes.document_type(inv.type_code, inv.is_credit_note)
    title = f"{kind} {clean(inv.number)}" if inv.number else kind
    return Sections(
        title=title,
        seller=_party(inv.seller_name, inv.seller_address, inv.seller_vat_id)
        + ([f"Tax number {clean(inv.seller_tax_number)}"] if inv.seller_tax_number else []),
        buyer=_party(inv.buyer_name, inv.buyer_address, inv.buyer_vat_id),
        details=_details(inv),
        lines=[
            (
                clean(line.id or ""),
                clean(line.name or ""),
                " ".join(x for x in (number(line.quantity), codes.unit(line.unit)) if x),
                money(line.price),
                codes.vat(line.vat_category, line.vat_rate),
                money(line.net_amount),
            )
            for line in inv.lines
        ],
        taxes=[
            (
                codes.vat_category(t.category)
                + (f" ({clean(t.exemption_reason)})" if t.exemption_reason else ""),
                f"{number(t.rate)} %" if t.rate is not None else "",
                money(t.taxable),
                money(t.tax),
            )
            for t in inv.taxes
        ],
        totals=_totals(inv),
        payment=_payment(inv),
        problems=[clean(p) for p in inv.problems],
        origin=_origin(inv),
    )


def _party(name: str | None, address: Address | None, vat_id: str | None) -> list[str]:
    lines = [clean(name)] if name else []
    lines += address_lines(address)
    if vat_id:
        lines.append(f"VAT ID {clean(vat_id)}")
    return lines


def _details(inv: EInvoice) -> list[tuple[str, str]]:
    period = (
        f"{inv.period_start or '…'} to {inv.period_end or '…'}"
        if inv.period_start or inv.period_end
        else None
    )
    rows = [
        ("Number", clean(inv.number) if inv.number else None),
        ("Issue date", inv.issue_date and inv.issue_date.isoformat()),
        ("Due date", inv.due_date and inv.due_date.isoformat()),
        ("Delivery date", inv.delivery_date and inv.delivery_date.isoformat()),
        ("Period", period),
        ("Buyer reference", clean(inv.buyer_reference) if inv.buyer_reference else None),
        ("Currency", clean(inv.currency) if inv.currency else None),
    ]
    return [(label, value) for label, value in rows if value]


# The totals (BG-22) in the order of the invoice's own summary; the strong ones always shown.
_TOTALS = (
    ("Sum of lines", "line_total", False),
    ("Allowances", "allowance_total", False),
    ("Charges", "charge_total", False),
    ("Net total", "net_total", True),
    ("VAT", "tax_total", True),
    ("Gross total", "gross_total", True),
    ("Paid in advance", "prepaid", False),
    ("Rounding", "rounding", False),
    ("Amount due", "amount_due", True),
)


def _totals(inv: EInvoice) -> list[tuple[str, str]]:
    rows = []
    for label, name, always in _TOTALS:
        value = getattr(inv, name)
        if value is None and not always:
            continue
        if not always and not value:  # "Allowances 0.00" says nothing
            continue
        rows.append((label, money(value, inv.currency) if value is not None else "-"))
    return rows


def _payment(inv: EInvoice) -> list[tuple[str, str]]:
    rows = [
        ("Means", codes.payment_means(inv.payment_means) if inv.payment_means else None),
        ("IBAN", codes.iban(inv.iban) if inv.iban else None),
        ("BIC", clean(inv.bic) if inv.bic else None),
        ("Account holder", clean(inv.account_name) if inv.account_name else None),
        ("Amount due", money(inv.amount_due, inv.currency) if inv.amount_due is not None else None),
        ("Due date", inv.due_date and inv.due_date.isoformat()),
        ("Terms", clean(inv.payment_terms) if inv.payment_terms else None),
    ]
    return [(label, value) for label, value in rows if value]


def _origin(inv: EInvoice) -> str:
    where = "an XML file" if inv.source == "xml" else f"{clean(inv.source)} in a PDF"
    profile = f", profile {clean(inv.profile)}" if inv.profile else ""
    return f"Read from the e-invoice's {inv.syntax} XML ({where}{profile})."


# --- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;color:#1b1b1b;background:#f4f4f2;margin:0}
main{max-width:52rem;margin:1.5rem auto;background:#fff;padding:2rem 2.5rem;
box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1rem;margin:1.6rem 0 .4rem;color:#555;
text-transform:uppercase;letter-spacing:.05em}
.parties{display:flex;gap:2rem;flex-wrap:wrap}.parties>div{flex:1 1 16rem}
.parties p{margin:.2rem 0;white-space:pre-line}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1.2rem;margin:0}
dt{color:#555}dd{margin:0;white-space:pre-line;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%}th,td{padding:.3rem .5rem;vertical-align:top;
border-bottom:1px solid #ddd;text-align:left;overflow-wrap:anywhere}
th{font-weight:600;color:#555}.num{text-align:right;white-space:nowrap}
table.totals{width:auto;margin-left:auto}table.totals tr.strong td{font-weight:700}
.check.ok{color:#176b2c}.check.bad{color:#9b1c1c}footer{margin-top:2rem;color:#777;font-size:.85rem}
@media print{body{background:#fff}main{box-shadow:none;margin:0;max-width:none}}
"""
# Should a value ever get through unescaped, the browser still runs and loads nothing.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STRONG = {"Net total", "VAT", "Gross total", "Amount due"}


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _dl(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows) + "</dl>"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]], numeric: set[int]) -> str:
    def row(cells: tuple[str, ...], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=num' if i in numeric else ''}>{_e(c)}</{tag}>"
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )

    body = "".join(row(r, "td") for r in rows)
    return f"<table><thead>{row(head, 'th')}</thead><tbody>{body}</tbody></table>"


def to_html(inv: EInvoice) -> str:
    """The invoice as one HTML page a browser opens: inline CSS, no script, nothing loaded."""
    s = sections(inv)
    who = f" · {s.seller[0]}" if inv.seller_name else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(s.title + who)}</title><style>{_CSS}</style></head>",
        f"<body><main><h1>{_e(s.title)}</h1>",
        '<section class="parties">',
        *(
            f"<div><h2>{label}</h2><p>{_e(chr(10).join(lines) or '-')}</p></div>"
            for label, lines in (("Seller", s.seller), ("Buyer", s.buyer))
        ),
        "</section>",
        f"<section><h2>Details</h2>{_dl(s.details)}</section>",
    ]
    if s.lines:
        head = ("#", "Item", "Quantity", "Price", "VAT", "Net")
        parts.append(f"<section><h2>Lines</h2>{_table(head, s.lines, {2, 3, 5})}</section>")
    if s.taxes:
        head = ("VAT category", "Rate", "Taxable amount", "VAT")
        parts.append(f"<section><h2>VAT</h2>{_table(head, s.taxes, {1, 2, 3})}</section>")
    totals = "".join(
        f"<tr{' class=strong' if k in _STRONG else ''}><td>{_e(k)}</td>"
        f'<td class="num">{_e(v)}</td></tr>'
        for k, v in s.totals
    )
    parts.append(f'<section><h2>Totals</h2><table class="totals">{totals}</table></section>')
    if s.payment:
        parts.append(f"<section><h2>Payment</h2>{_dl(s.payment)}</section>")
    parts.append(_html_check(s.problems))
    parts.append(f"<footer>{_e(s.origin)}</footer></main></body></html>\n")
    return "\n".join(parts)


def _html_check(problems: list[str]) -> str:
    if not problems:
        return '<section class="check ok"><h2>Check</h2><p>Passed every check.</p></section>'
    items = "".join(f"<li>{_e(p)}</li>" for p in problems)
    return f'<section class="check bad"><h2>Check</h2><ul>{items}</ul></section>'


# --- text -----------------------------------------------------------------------------------------


def to_text(inv: EInvoice, width: int = 80) -> str:
    """The invoice as plain text lines of at most `width` characters (40 at the least)."""
    width = max(40, width)
    s = sections(inv)
    out = [s.title, "=" * min(width, len(s.title)), ""]
    for label, lines in (("Seller", s.seller), ("Buyer", s.buyer)):
        out.append(label)
        out += _wrapped(lines or ["-"], width, "  ")
    out.append("")
    out += _pairs("Details", s.details, width)
    if s.lines:
        out += ["Lines", *_text_lines(s.lines, width), ""]
    if s.taxes:
        out.append("VAT")
        for category, rate, taxable, tax in s.taxes:
            out += _wrapped([f"{category} {rate}: {tax} on {taxable}"], width, "  ")
        out.append("")
    out += _pairs("Totals", s.totals, width, right=True)
    if s.payment:
        out += _pairs("Payment", s.payment, width)
    out.append("Check")
    if not s.problems:
        out.append("  passed every check")
    for problem in s.problems:
        out += textwrap.wrap(problem, width, initial_indent="  - ", subsequent_indent="    ")
    out += ["", *textwrap.wrap(s.origin, width)]
    return "\n".join(out) + "\n"


def _wrapped(items: list[str], width: int, indent: str) -> list[str]:
    out = []
    for item in items:
        for part in item.splitlines() or [""]:
            out += textwrap.wrap(part, width, initial_indent=indent, subsequent_indent=indent) or [
                indent.rstrip()
            ]
    return out


def _pairs(title: str, rows: list[tuple[str, str]], width: int, right: bool = False) -> list[str]:
    if not rows:
        return []
    label_width = max(len(k) for k, _ in rows) + 2
    out = [title]
    for key, value in rows:
        if right:
            room = max(len(value), min(width, 48) - label_width - 2)
            out.append(f"  {key:<{label_width}}{value:>{room}}")
            continue
        first = f"  {key:<{label_width}}"
        out += _wrapped_after(first, value, width)
    out.append("")
    return out


def _wrapped_after(first: str, value: str, width: int) -> list[str]:
    indent = " " * len(first)
    room = max(10, width - len(first))
    out: list[str] = []
    for part in value.splitlines() or [""]:
        out += textwrap.wrap(part, room) or [""]
    return [(first if i == 0 else indent) + line for i, line in enumerate(out)]


def _text_lines(rows: list[tuple[str, ...]], width: int) -> list[str]:
    """The lines as a table: the item's name wraps in what the numbers leave of the width."""
    head = ("#", "Item", "Quantity", "Price", "VAT", "Net")
    widths = [max(len(r[i]) for r in (*rows, head)) for i in range(6)]
    numbers = widths[0] + widths[2] + widths[3] + widths[4] + widths[5] + 12
    room = width - numbers
    if room < 16:  # too narrow for a table: one line's figures under its name
        out = []
        for pos, item, qty, price, vat, net in rows:
            out += _wrapped([f"{pos}. {item}".strip(". ")], width, "  ")
            figures = " · ".join(x for x in (qty, price and f"at {price}", vat, net) if x)
            out += _wrapped([figures], width, "     ")
        return out
    out = []
    for pos, item, qty, price, vat, net in (head, *rows):
        names = textwrap.wrap(item, room) or [""]
        out.append(
            f"  {pos:>{widths[0]}}  {names[0]:<{room}}  {qty:>{widths[2]}}  "
            f"{price:>{widths[3]}}  {vat:>{widths[4]}}  {net:>{widths[5]}}".rstrip()
        )
        out += [f"  {'':>{widths[0]}}  {name}" for name in names[1:]]
    return out
