"""HTML parsing: a list page read by gmid's form connector against the bare parser, and the
HTML5 parsers it could move to.

A generated list page, as portals send them: a head with styles and scripts, a navigation, a
search form, a table of N invoices (each row with nested spans, data attributes, a menu of
actions and a hidden detail block) and a pager; about 1.75 KB a row, so 50-200 rows make
110-370 KB.

  (a) gmid: what the form connector does with one list page (connectors/form/connector.py,
      _html_list): mechanicalsoup's parse of the answer (`Browser.add_soup`, which is
      BeautifulSoup with mechanicalsoup's default `features="lxml"`, since gmid's
      StatefulBrowser passes no soup_config), the login-form check, the rows' selector, every
      row made a RemoteDocument (id, date, number, amount, download link: extract.to_document)
      and the `next` link.
  (b) bare: BeautifulSoup(page, "lxml") and the same selectors (login form, rows, each row's
      fields and link, next), the texts taken with get_text(" ", strip=True), nothing cleaned.
  Candidates, the same parse + select + texts as (b):
      bs4 + html.parser, bs4 + html5lib, lxml.html + cssselect (the same CSS, translated to
      XPath), selectolax (Lexbor).

Each figure is the median over --repeats of one page's work, the candidates taken in turn in
each repeat. Then the HTML5 check: which parsers put a <tbody> into a table written without
one, so that `table > tbody > tr` (what the browser's developer tools show and copy) matches.

Needs, in the bench's .venv only: selectolax, html5lib, cssselect (pip install). Not
dependencies of gmid.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from bs4 import BeautifulSoup
from mechanicalsoup import Browser

from connectors.form import extract as x
from connectors.form.spec import read_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median

URL = "https://portal.example/invoices?page=2"
ROWS = "table.invoices tbody tr"
FIELDS = {"id": "td.number", "date": "td.date", "number": "td.number", "amount": "td.amount"}
DOWNLOAD, NEXT, LOGIN, PASSWORD = "a.pdf", "a.next", "form#login", 'input[type="password" i]'

SPEC = {
    "start": "https://portal.example/login",
    "login": {
        "form": LOGIN,
        "fields": {"username": "email", "password": "password"},
        "success": {"selector": "a.logout"},
    },
    "documents": {
        "pages": ["/invoices"],
        "rows": ROWS,
        "fields": {
            "id": {"selector": "td.number"},
            "date": {"selector": "td.date", "formats": ["%d.%m.%Y"]},
            "number": "td.number",
            "amount": {"selector": "td.amount", "decimal": ","},
        },
        "download": {"selector": DOWNLOAD},
        "next": {"selector": NEXT},
    },
}

# -- the page

HEAD = """<!DOCTYPE html>
<html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rechnungen - Kundenportal</title>
<link rel="stylesheet" href="/static/app.8f3a1c.css">
<style>{css}</style>
<script>window.__CONFIG__ = {config};</script>
<script src="/static/vendor.2b9e7d.js" defer></script>
</head><body class="portal theme-light">
<header class="topbar"><a class="brand" href="/"><img src="/static/logo.svg" alt="Logo"></a>
<nav class="main-nav"><ul>{nav}</ul></nav>
<div class="account"><span class="user">Max Mustermann</span>
<a class="logout" href="/logout">Abmelden</a></div></header>
<main class="content"><aside class="sidebar"><ul>{side}</ul></aside>
<section class="invoices-view"><h1>Ihre Rechnungen</h1>
<form class="search" method="get" action="/invoices"><input type="search" name="q"
 placeholder="Suchen"><select name="year">{years}</select><button type="submit">Filtern</button>
</form>
"""

ROW = """<tr class="invoice-row {parity}" data-id="{uid}" data-status="{status}">
<td class="select"><input type="checkbox" name="sel" value="{uid}" aria-label="Auswählen"></td>
<td class="number"><span class="label">Rechnungsnr.</span> <span class="value">{number}</span></td>
<td class="date"><time datetime="{iso}">{date}</time></td>
<td class="period"><span>{period}</span></td>
<td class="contract"><span class="contract-no">{contract}</span><br><small>{address}</small></td>
<td class="amount"><span class="currency-value" data-cents="{cents}">{amount}</span> €</td>
<td class="status"><span class="badge badge-{status}">{status_text}</span></td>
<td class="actions"><div class="dropdown"><button class="btn btn-icon" type="button"
 aria-haspopup="true" aria-expanded="false" data-toggle="dropdown">⋮</button>
<ul class="dropdown-menu"><li><a class="pdf" href="/documents/{uid}/download?format=pdf"
 title="Rechnung als PDF herunterladen">PDF</a></li>
<li><a class="detail" href="/invoices/{uid}">Details</a></li>
<li><a class="mail" href="#" data-action="mail" data-id="{uid}">Per E-Mail senden</a></li>
</ul></div>
<div class="row-detail" hidden><dl><dt>Kundennummer</dt><dd>{customer}</dd>
<dt>Zahlungsart</dt><dd>SEPA-Lastschrift, Mandat {mandate}</dd><dt>Fällig am</dt>
<dd>{due}</dd><dt>Verbrauch</dt><dd>{usage} kWh (Zähler {meter})</dd>
<dt>Hinweis</dt><dd>{note}</dd></dl></div></td></tr>
"""

TAIL = """</table>
<nav class="pager"><a class="prev" href="/invoices?page=1">Zurück</a>
<span class="current">Seite 2 von 9</span><a class="next" href="/invoices?page=3">Weiter</a></nav>
</section></main>
<footer><ul>{foot}</ul><p>© 2026 Stadtwerke Beispiel GmbH</p></footer>
<div class="modal" id="mail-dialog" hidden><form method="post" action="/mail">
<input type="hidden" name="csrf" value="{csrf}"><input type="email" name="to"></form></div>
<script>{script}</script>
</body></html>
"""

WORDS = [
    "Strom",
    "Gas",
    "Wasser",
    "Abschlag",
    "Jahresabrechnung",
    "Grundversorgung",
    "Ökostrom",
    "Zählerstand",
    "Tarif",
    "Vertrag",
    "Kunde",
    "Rechnung",
    "Gutschrift",
    "Netzentgelt",
    "Umlage",
    "Mehrwertsteuer",
    "Zahlung",
    "Lastschrift",
]


def page(rows: int, tbody: bool = True, seed: int = 1) -> bytes:
    """A list page with `rows` invoice rows; without `tbody`, the table has no <tbody> tag."""
    rng = random.Random(seed)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    css = "".join(
        f".c{i} {{ margin: {i % 7}px; color: #{rng.randrange(1 << 24):06x}; }}\n"
        for i in range(300)
    )
    config = '{"locale": "de-DE", "features": [' + ",".join(f'"f{i}"' for i in range(80)) + "]}"
    nav = "".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in WORDS[:8])
    side = "".join(f'<li><a href="/s/{i}">{words(2)}</a></li>' for i in range(20))
    years = "".join(f'<option value="{y}">{y}</option>' for y in range(2015, 2027))
    out = [HEAD.format(css=css, config=config, nav=nav, side=side, years=years)]
    out.append('<table class="table invoices"><caption>Rechnungen</caption>')
    out.append("<thead><tr><th></th><th>Nr.</th><th>Datum</th><th>Zeitraum</th><th>Vertrag</th>")
    out.append("<th>Betrag</th><th>Status</th><th></th></tr></thead>\n")
    out.append("<tbody>\n" if tbody else "")
    for k in range(rows):
        day, month, year = 1 + k % 28, 1 + k % 12, 2026 - k // 12
        cents = rng.randrange(1_000, 500_000)
        status = rng.choice(("paid", "open", "overdue"))
        out.append(
            ROW.format(
                parity="odd" if k % 2 else "even",
                uid=f"{rng.randrange(16**12):012x}",
                status=status,
                status_text={"paid": "Bezahlt", "open": "Offen", "overdue": "Überfällig"}[status],
                number=f"R-{year}-{k + 1:05d}",
                iso=f"{year}-{month:02d}-{day:02d}",
                date=f"{day:02d}.{month:02d}.{year}",
                period=f"01.{month:02d}.{year} - 28.{month:02d}.{year}",
                contract=f"V{rng.randrange(10**8):08d}",
                address=f"{words(2)}straße {rng.randrange(1, 200)}, 12345 Beispielstadt",
                cents=cents,
                amount=f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}",
                customer=f"K{rng.randrange(10**7):07d}",
                mandate=f"M-{rng.randrange(10**9):09d}",
                due=f"{day:02d}.{month % 12 + 1:02d}.{year}",
                usage=rng.randrange(100, 5000),
                meter=f"1ESY{rng.randrange(10**10):010d}",
                note=words(30),
            )
        )
    out.append("</tbody>\n" if tbody else "")
    foot = "".join(f'<li><a href="/f/{i}">{words(2)}</a></li>' for i in range(12))
    script = "".join(f"function f{i}(a){{return a*{i}+{rng.random()};}}\n" for i in range(150))
    out.append(TAIL.format(foot=foot, csrf=f"{rng.randrange(16**32):032x}", script=script))
    return "".join(out).encode()


# -- the work, per parser: parse, login-form check, rows, each row's values, the next link


def gmid_path(spec) -> Callable[[bytes], list]:
    def work(body: bytes) -> list:
        response = requests.Response()
        response._content = body  # noqa: SLF001  (a response as requests makes it)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.encoding = "utf-8"
        Browser.add_soup(response, {"features": "lxml"})  # what StatefulBrowser() does
        soup = response.soup
        assert x.find_form(soup, spec.login.form, PASSWORD) is None
        docs = [
            x.to_document(r, spec.documents, URL) for r in x.html_rows(soup, spec.documents.rows)
        ]
        nxt = x.read(x.HtmlRecord(soup), spec.documents.next)
        return [docs, nxt]

    return work


def bs4_path(features: str) -> Callable[[bytes], list]:
    def text(tag) -> str | None:
        return None if tag is None else tag.get_text(" ", strip=True)

    def work(body: bytes) -> list:
        soup = BeautifulSoup(body, features, from_encoding="utf-8")
        assert soup.select_one(LOGIN) is None
        rows = [
            [text(row.select_one(s)) for s in FIELDS.values()] + [row.select_one(DOWNLOAD)["href"]]
            for row in soup.select(ROWS)
        ]
        return [rows, soup.select_one(NEXT)["href"]]

    return work


def lxml_path() -> Callable[[bytes], list]:
    import lxml.html
    from lxml.cssselect import CSSSelector

    login, rows, download, nxt = (CSSSelector(s) for s in (LOGIN, ROWS, DOWNLOAD, NEXT))
    fields = [CSSSelector(s) for s in FIELDS.values()]

    def text(found: list) -> str | None:
        return " ".join(found[0].text_content().split()) if found else None

    def work(body: bytes) -> list:
        root = lxml.html.document_fromstring(body)
        assert not login(root)
        out = [
            [text(f(row)) for f in fields] + [download(row)[0].get("href")] for row in rows(root)
        ]
        return [out, nxt(root)[0].get("href")]

    return work


def selectolax_path() -> Callable[[bytes], list]:
    from selectolax.lexbor import LexborHTMLParser

    def text(node) -> str | None:
        return None if node is None else node.text(separator=" ", strip=True)

    def work(body: bytes) -> list:
        tree = LexborHTMLParser(body)
        assert tree.css_first(LOGIN) is None
        rows = [
            [text(row.css_first(s)) for s in FIELDS.values()]
            + [row.css_first(DOWNLOAD).attributes["href"]]
            for row in tree.css(ROWS)
        ]
        return [rows, tree.css_first(NEXT).attributes["href"]]

    return work


def tbody_built() -> dict[str, bool]:
    """Whether `table > tbody > tr` finds the rows of a table written without <tbody>."""
    import lxml.html
    from selectolax.lexbor import LexborHTMLParser

    body = page(3, tbody=False)
    sel = "table.invoices > tbody > tr"
    found = {
        f"bs4 + {f}": len(BeautifulSoup(body, f, from_encoding="utf-8").select(sel))
        for f in ("lxml", "html.parser", "html5lib")
    }
    found["lxml.html"] = len(lxml.html.document_fromstring(body).cssselect(sel))
    found["selectolax (Lexbor)"] = len(LexborHTMLParser(body).css(sel))
    return {name: n == 3 for name, n in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    spec, problems = read_spec(SPEC)
    assert spec is not None, problems
    candidates = {
        "(a) gmid (mechanicalsoup, bs4 + lxml)": gmid_path(spec),
        "(b) bare bs4 + lxml": bs4_path("lxml"),
        "bs4 + html.parser": bs4_path("html.parser"),
        "bs4 + html5lib": bs4_path("html5lib"),
        "lxml.html + cssselect": lxml_path(),
        "selectolax (Lexbor)": selectolax_path(),
    }
    print(f"one list page's work, median of {args.repeats} repeats; ratio against (b)")
    for n in args.rows:
        body = page(n)
        # Every candidate must read the same rows and the same next link.
        results = {name: work(body) for name, work in candidates.items()}
        docs, nxt = results["(a) gmid (mechanicalsoup, bs4 + lxml)"]
        assert len(docs) == n and nxt == "/invoices?page=3", (len(docs), nxt)
        for name, (rows, link) in results.items():
            if name.startswith("(a)"):
                continue
            assert len(rows) == n and link == "/invoices?page=3", name
            # Texts compared with their white space collapsed, as gmid reads them.
            assert [" ".join(r[0].split()) for r in rows] == [d.id for d in docs], name
            assert [URL.split("/invoices")[0] + r[-1] for r in rows] == [d.url for d in docs], name
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.repeats):
            for name, work in candidates.items():
                start = time.perf_counter()
                work(body)
                times[name].append(time.perf_counter() - start)
        parse_only = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            BeautifulSoup(body, "lxml", from_encoding="utf-8")
            parse_only.append(time.perf_counter() - start)
        b = median(times["(b) bare bs4 + lxml"])
        print(
            f"{n} rows, {len(body) / 1024:.0f} KB (bs4 + lxml's parse alone: "
            f"{median(parse_only) * 1000:.1f} ms, {median(parse_only) / b:.0%} of (b))"
        )
        for name, values in times.items():
            m = median(values)
            print(f"  {name:40s} {m * 1000:8.2f} ms  {m / n * 1e6:7.1f} µs/row  {m / b:5.2f}x")
    print("a table without <tbody>: does `table > tbody > tr` match (an HTML5 tree)?")
    for name, built in tbody_built().items():
        print(f"  {name:40s} {'yes' if built else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
