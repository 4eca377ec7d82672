"""parse_html builds the tree a browser builds, so selectors copied from its developer tools
match: each case here is what a browser's DOM (document.querySelector) gives for the markup."""

from __future__ import annotations

import pytest

from connectors.form.html import MAX_DEPTH, charset, decode, parse_html


def texts(soup, selector: str) -> list[str]:
    return [tag.get_text(" ", strip=True) for tag in soup.select(selector)]


def test_a_table_without_tbody_gets_one():
    soup = parse_html(
        "<table class=invoices><tr><td>R-1<td><a href=/1.pdf>PDF</a>"
        "<tr><td>R-2<td><a href=/2.pdf>PDF</a></table>"
    )
    assert texts(soup, "table.invoices > tbody > tr > td:nth-child(1)") == ["R-1", "R-2"]
    links = soup.select("table.invoices > tbody > tr > td:nth-child(2) a")
    assert [a["href"] for a in links] == ["/1.pdf", "/2.pdf"]


def test_a_header_row_goes_into_thead_only_when_written_so():
    soup = parse_html("<table><thead><tr><th>Nr.</thead><tr><td>R-1</table>")
    assert texts(soup, "table > thead > tr > th") == ["Nr."]
    assert texts(soup, "table > tbody > tr > td") == ["R-1"]


def test_html_head_and_body_are_implied():
    soup = parse_html("<title>Rechnungen</title><p>Hallo")
    assert texts(soup, "html > head > title") == ["Rechnungen"]
    assert texts(soup, "html > body > p") == ["Hallo"]


def test_unclosed_paragraphs_list_items_cells_and_rows_end_where_a_browser_ends_them():
    soup = parse_html(
        "<p>one<p>two<div>three</div><ul><li>a<li>b</ul><table><tr><td>1<td>2<tr><td>3</table>"
    )
    assert texts(soup, "body > p") == ["one", "two"]
    assert texts(soup, "body > div") == ["three"]  # a <div> closes the open <p>
    assert texts(soup, "ul > li") == ["a", "b"]
    assert [texts(row, "td") for row in soup.select("tbody > tr")] == [["1", "2"], ["3"]]


def test_misnested_formatting_tags_are_mended_as_a_browser_mends_them():
    soup = parse_html("<p><b>1<i>2</b>3</i></p><a href=/x>x<a href=/y>y</a>")
    assert str(soup.p) == "<p><b>1<i>2</i></b><i>3</i></p>"
    assert [a["href"] for a in soup.select("body > a")] == ["/x", "/y"]  # no link in a link


def test_a_template_is_not_part_of_the_page():
    soup = parse_html("<template><a class=pdf href=/t.pdf></a></template><a class=pdf href=/1>")
    assert [a["href"] for a in soup.select("a.pdf")] == ["/1"]


def test_entities_are_read_as_a_browser_reads_them():
    soup = parse_html("<p>Preis&nbsp;&euro; 5 &amp Co &notit; &#x41;&#65;</p>")
    assert soup.p.get_text() == "Preis\xa0€ 5 & Co ¬it; AA"


def test_a_form_in_a_table_is_empty_but_sends_the_inputs_a_browser_sends():
    soup = parse_html(
        "<table><form id=login action=/login method=post>"
        "<tr><td>Benutzer<td><input name=user>"
        "<tr><td>Passwort<td><input type=password name=pass>"
        "<tr><td><select name=lang><option>de<option selected>en</select><td><button>Go</button>"
        "</form></table><input name=outside>"
    )
    # the page as the browser's developer tools show it
    assert soup.select_one("table > tbody > tr > td > input[name=user]") is not None
    assert soup.select("table > form + tbody")
    # the form holds what the browser would send with it, and no more
    form = soup.select_one("form#login")
    assert [t.get("name") for t in form.select("input, select, button")] == [
        "user",
        "pass",
        "lang",
        None,
    ]
    assert form.select_one("option[selected]").get_text() == "en"


def test_a_form_per_row_sends_only_its_rows_inputs():
    soup = parse_html(
        "<table><tr><form action=/dl><td>R-1<input type=hidden name=id value=1>"
        "<td><button>PDF</button></form>"
        "<tr><form action=/dl><td>R-2<input type=hidden name=id value=2></form></table>"
    )
    rows = soup.select("table > tbody > tr")
    assert [[i["value"] for i in row.select("form input")] for row in rows] == [["1"], ["2"]]


def test_a_form_around_a_table_keeps_its_inputs():
    soup = parse_html("<form id=f><table><tr><td><input name=a></table></form>")
    assert [i["name"] for i in soup.select("form#f > table > tbody > tr > td > input")] == ["a"]
    assert len(soup.select("input")) == 1  # nothing copied


@pytest.mark.parametrize(
    ("data", "header", "encoding"),
    [
        ("<meta charset=iso-8859-1><p>café – 5 €".encode("cp1252"), None, "windows-1252"),
        (
            b'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-15"><p>caf\xe9',
            None,
            "iso8859-15",
        ),
        ("<meta charset=windows-1252><p>café".encode(), "utf-8", "utf-8"),  # the header wins
        (b"\xef\xbb\xbf<meta charset=latin1><p>caf\xc3\xa9", "latin1", "utf-8"),  # the BOM wins
        ("<p>café".encode(), None, "utf-8"),  # undeclared, valid UTF-8
        ("<p>café".encode("cp1252"), None, "windows-1252"),  # undeclared, not UTF-8
        ("<meta charset=utf-16><p>café".encode(), None, "utf-8"),  # the standard's rule
        ("<meta charset=utf-16><p>café".encode(), "utf-16", "utf-8"),  # as mechanicalsoup asks
        ("<p>café".encode("utf-16-le"), "utf-16", "utf-16"),  # a header may say UTF-16
        ("<meta charset=hex><p>café".encode(), None, "utf-8"),  # no text encoding: ignored
    ],
)
def test_the_charset_comes_from_the_bytes_the_header_and_the_meta_tag(data, header, encoding):
    soup = parse_html(data, encoding=header)
    assert soup.p.get_text().startswith("café")
    assert decode(data, header)[1] == encoding


def test_undecodable_bytes_become_replacement_characters_and_lose_nothing_else():
    soup = parse_html(b"<meta charset=utf-8><p>a\xff\xfeb</p><p>c")
    assert texts(soup, "p") == ["a\ufffd\ufffdb", "c"]


def test_the_charset_of_a_content_type_header():
    assert charset("text/html; charset=ISO-8859-1") == "ISO-8859-1"
    assert charset('text/html;charset="utf-8"') == "utf-8"
    assert charset("text/html") is None
    assert charset(None) is None


def test_scripts_and_styles_stay_text_and_out_of_the_pages_words():
    soup = parse_html("<script>if (a<b) document.write('<td>')</script><style>p>a{}</style><p>x")
    assert soup.script.string == "if (a<b) document.write('<td>')"
    assert soup.body.get_text(" ", strip=True) == "x"


def test_deep_nesting_stops_at_chromes_depth():
    soup = parse_html("<div id=top>" + "<div>" * 20000 + "deep<span>s</span>")
    assert soup.select_one("#top").get_text() == "deeps"
    deepest = soup.find(string="deep").parent
    assert len(list(deepest.parents)) == MAX_DEPTH  # 511 elements above it, and the document
    # what lies deeper hangs under it, in the page's order
    assert [t.name for t in deepest.find_all(recursive=False)][-2:] == ["div", "span"]
