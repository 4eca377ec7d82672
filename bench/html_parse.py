"""HTML parsing: a list page read by gmid's form connector against the bare parser, and the
HTML5 parsers it could use.

A generated list page, as portals send them: a head with styles and scripts, a navigation, a
search form, a table of N invoices (each row with nested spans, data attributes, a menu of
actions and a hidden detail block) and a pager; about 1.75 KB a row, so 50-200 rows make
110-370 KB.

  (a) gmid: what the form connector does with one list page (connectors/form/connector.py,
      _html_list): mechanicalsoup's parse of the answer (`Browser.add_soup` with the soup_config
      of gmid's browser, gmid.portals.web.make_browser: parse_html's HTML5 tree builder), the
      login-form check, the rows' selector, every row made a RemoteDocument (id, date, number,
      amount, download link: extract.to_document) and the `next` link.
  (a0) the same with mechanicalsoup's default `features="lxml"`: gmid before HTML5 parsing.
  (b) bare: BeautifulSoup(page, "lxml") and the same selectors (login form, rows, each row's
      fields and link, next), the texts taken with get_text(" ", strip=True), nothing cleaned.
  Candidates, the same parse + select + texts as (b):
      bs4 + parse_html (Lexbor's HTML5 tree replayed into bs4: what gmid uses),
      bs4 + Lexbor's serialisation re-parsed by lxml, bs4 + html5lib, bs4 + soup5ever
      (html5ever), bs4 + html.parser, lxml.html + cssselect (the same CSS, translated to
      XPath), selectolax (Lexbor) with its own API.

Each figure is the median over --repeats of one page's work, the candidates taken in turn in
each repeat. Then the HTML5 check: for each parser, which of the cases a copied selector
depends on give what a browser's DOM gives (a table without <tbody>, implied html/body,
unclosed and misnested tags, a form opened in a table, <template>, entities, a charset named
only in <meta>).

Needs, in the bench's .venv only (pip install; a missing one is left out): html5lib,
cssselect, soup5ever. Not dependencies of gmid.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from bs4 import BeautifulSoup
from mechanicalsoup import Browser

from connectors.form import extract as x
from connectors.form.html import SOUP_CONFIG, parse_html
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


def gmid_path(spec, soup_config: dict) -> Callable[[bytes], list]:
    def work(body: bytes) -> list:
        response = requests.Response()
        response._content = body  # noqa: SLF001  (a response as requests makes it)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.encoding = "utf-8"
        Browser.add_soup(response, soup_config)  # what the browser does with each page
        soup = response.soup
        assert x.find_form(soup, spec.login.form, PASSWORD) is None
        docs = [
            x.to_document(r, spec.documents, URL) for r in x.html_rows(soup, spec.documents.rows)
        ]
        nxt = x.read(x.HtmlRecord(soup), spec.documents.next)
        return [docs, nxt]

    return work


def bs4_path(parse: Callable[[bytes], BeautifulSoup]) -> Callable[[bytes], list]:
    def text(tag) -> str | None:
        return None if tag is None else tag.get_text(" ", strip=True)

    def work(body: bytes) -> list:
        soup = parse(body)
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


def soups() -> dict[str, Callable[[bytes], BeautifulSoup]]:
    """The BeautifulSoup parsers measured, each reading a page's bytes (UTF-8, as declared)."""

    def features(name: str) -> Callable[[bytes], BeautifulSoup]:
        return lambda body: BeautifulSoup(body, name, from_encoding="utf-8")

    def reparsed(body: bytes) -> BeautifulSoup:
        from selectolax.lexbor import LexborHTMLParser

        return BeautifulSoup(LexborHTMLParser(body).html, "lxml")

    found = {
        "(b) bare bs4 + lxml": features("lxml"),
        "bs4 + parse_html (Lexbor replayed)": lambda body: parse_html(body, encoding="utf-8"),
        "bs4 + Lexbor's HTML re-parsed by lxml": reparsed,
        "bs4 + html.parser": features("html.parser"),
    }
    if _has("html5lib"):
        found["bs4 + html5lib"] = features("html5lib")
    if _has("soup5ever"):
        import soup5ever  # noqa: F401  (registers the "html5ever" feature)

        found["bs4 + soup5ever (html5ever)"] = features("html5ever")
    return found


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- what a browser's DOM gives: (markup, selector, the texts (or names) of what it matches)

CASES = {
    "a table without <tbody> gets one": (
        "<table class=t><tr><td>1<td>2</table>",
        "table.t > tbody > tr > td:nth-child(2)",
        ["2"],
    ),
    "html, head and body implied": ("<title>T</title><p>x", "html > body > p", ["x"]),
    "unclosed <p> and <li>": ("<p>a<p>b<ul><li>c<li>d</ul>", "body > p, ul > li", list("abcd")),
    "unclosed <td> and <tr>": (
        "<table><tr><td>1<td>2<tr><td>3</table>",
        "table tr:nth-child(2) > td",
        ["3"],
    ),
    "misnested <b><i></b></i>": ("<p><b>1<i>2</b>3</i>", "p > b > i, p > i", ["2", "3"]),
    "a link in a link": ("<a href=1>x<a href=2>y</a>", "body > a", ["x", "y"]),
    "a form opened in a table, rows in tbody": (
        "<table><form id=f><tr><td><input name=u></form></table>",
        "table > tbody > tr > td > input",
        ["u"],
    ),
    "<template> content out of the page": (
        "<template><a class=x>t</a></template><a class=x>p</a>",
        "a.x",
        ["p"],
    ),
    "entities": ("<p>&notit; &euro &euro; &#x41;</p>", "p", ["¬it; &euro € A"]),
    "charset only in <meta>": (
        "<meta charset=windows-1252><p>café €".encode("cp1252"),
        "p",
        ["café €"],
    ),
}


def matched(parser: str, markup: str | bytes, selector: str) -> list[str]:
    """What a selector matches on a page parsed by one candidate: texts, or input names."""
    body = markup if isinstance(markup, bytes) else markup.encode()
    if parser == "selectolax (Lexbor)":
        from selectolax.lexbor import LexborHTMLParser

        nodes = LexborHTMLParser(body).css(selector)
        return [n.attributes.get("name") or n.text(strip=True) for n in nodes]
    if parser == "lxml.html + cssselect":
        import lxml.html

        nodes = lxml.html.document_fromstring(body).cssselect(selector)
        return [n.get("name") or n.text_content().strip() for n in nodes]
    if parser == "bs4 + parse_html (Lexbor replayed)":
        soup = parse_html(body)  # the charset found as gmid finds it
    elif parser == "bs4 + Lexbor's HTML re-parsed by lxml":
        soup = soups()[parser](body)
    else:
        features = {"bs4 + soup5ever (html5ever)": "html5ever"}.get(parser)
        soup = BeautifulSoup(body, features or parser.split(" + ")[1].split()[0])
    return [t.get("name") or t.get_text(strip=True) for t in soup.select(selector)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    spec, problems = read_spec(SPEC)
    assert spec is not None, problems
    candidates = {
        "(a) gmid (mechanicalsoup, parse_html)": gmid_path(spec, SOUP_CONFIG),
        "(a0) gmid before (mechanicalsoup, lxml)": gmid_path(spec, {"features": "lxml"}),
    }
    candidates.update({name: bs4_path(parse) for name, parse in soups().items()})
    if _has("cssselect"):
        candidates["lxml.html + cssselect"] = lxml_path()
    candidates["selectolax (Lexbor)"] = selectolax_path()
    # the parse alone, each BeautifulSoup parser against the one gmid used before (bs4 + lxml)
    parses = {name.removeprefix("(b) bare "): parse for name, parse in soups().items()}
    print(
        f"medians of {args.repeats} repeats; a ratio is the median of each repeat's ratio "
        "(the machine's load shifts between repeats, not within one)"
    )
    for n in args.rows:
        body = page(n)
        check(candidates, body, n)
        work = measure(candidates, body, args.repeats)
        print(f"{n} rows, {len(body) / 1024:.0f} KB: one list page's work; ratio against (b)")
        report(work, "(b) bare bs4 + lxml", n)
        a, a0 = "(a) gmid (mechanicalsoup, parse_html)", "(a0) gmid before (mechanicalsoup, lxml)"
        now = median([x / y for x, y in zip(work[a], work[a0], strict=True)])
        print(f"  gmid's list page now against before: {now:.2f}x")
        print(f"{n} rows: the parse alone, ratio against bs4 + lxml (gmid's parser before)")
        report(measure(parses, body, args.repeats), "bs4 + lxml", n)
    print(f"what a browser's DOM gives, of {len(CASES)} cases a copied selector depends on")
    for name in [*soups(), "lxml.html + cssselect", "selectolax (Lexbor)"]:
        wrong = [case for case, c in CASES.items() if matched(name, *c[:2]) != c[2]]
        print(f"  {name:42s} {len(CASES) - len(wrong):2d}  {'; '.join(wrong)}")
    return 0


def measure(candidates: dict[str, Callable], body: bytes, repeats: int) -> dict[str, list]:
    """Each candidate's times over `repeats`, the candidates taken in turn in each repeat."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, work in candidates.items():
            gc.collect()  # the last candidate's tree (cycles) is not this one's cost
            start = time.perf_counter()
            work(body)
            times[name].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], base: str, n: int) -> None:
    """One line a candidate: median, per row, and the median of its ratios to `base`."""
    for name, values in times.items():
        m = median(values)
        ratio = median([x / y for x, y in zip(values, times[base], strict=True)])
        print(f"  {name:42s} {m * 1000:8.2f} ms  {m / n * 1e6:7.1f} µs/row  {ratio:5.2f}x")


def check(candidates: dict[str, Callable[[bytes], list]], body: bytes, n: int) -> None:
    """Every candidate must read the same rows and the same next link."""
    results = {name: work(body) for name, work in candidates.items()}
    docs, nxt = results["(a) gmid (mechanicalsoup, parse_html)"]
    assert len(docs) == n and nxt == "/invoices?page=3", (len(docs), nxt)
    for name, (rows, link) in results.items():
        if name.startswith("(a"):
            assert [d.id for d in rows] == [d.id for d in docs], name
            continue
        assert len(rows) == n and link == "/invoices?page=3", name
        # Texts compared with their white space collapsed, as gmid reads them.
        assert [" ".join(r[0].split()) for r in rows] == [d.id for d in docs], name
        assert [URL.split("/invoices")[0] + r[-1] for r in rows] == [d.url for d in docs], name


if __name__ == "__main__":
    sys.exit(main())
