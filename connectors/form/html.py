"""Portal pages parsed as a browser parses them, into the BeautifulSoup trees gmid reads.

Lexbor (through selectolax) builds the HTML5 tree, as browsers do: a table written without
<tbody> gets one, html/head/body are implied, unclosed p/li/td/tr end where a browser ends
them, misnested formatting tags are mended, a <template>'s content stays out of the document.
The tree is then handed to BeautifulSoup node by node, so selectors copied from a browser's
developer tools (`table.invoices > tbody > tr`) match, and everything that reads soups
(mechanicalsoup's forms, the selectors of the descriptions) works as before.

A form opened inside a table (`<table><form><tr>...`) is an empty element in a browser's tree:
the browser still sends the inputs that follow it, remembered by the parser. Here such a form
gets copies of those inputs (up to the next form, within its table), so that filling and
submitting it, and finding it by its password input, work as in the browser.
"""

from __future__ import annotations

import codecs
import copy
import re
from collections.abc import Iterator

from bs4 import BeautifulSoup, Tag
from bs4.builder import HTML, PERMISSIVE, HTMLTreeBuilder
from bs4.dammit import EncodingDetector
from bs4.element import Comment, Doctype
from selectolax.lexbor import LexborHTMLParser

# Chrome's parser nests no deeper (HTMLConstructionSite's kMaximumHTMLParserDOMTreeDepth).
MAX_DEPTH = 512
# Where a browser's parser leaves a <form> empty (the "in table" insertion modes).
_TABLE_PARENTS = frozenset({"table", "tbody", "thead", "tfoot", "tr"})
# What a form sends (a fieldset only groups; its inputs are copied themselves).
_CONTROLS = ("input", "button", "select", "textarea")
# Labels the HTML standard reads as windows-1252 (Python's latin-1 lacks 0x80-0x9f's letters).
_WINDOWS_1252 = frozenset(
    {"ascii", "us-ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "cp819"}
)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"))
_BOMS += ((codecs.BOM_UTF16_BE, "utf-16-be"),)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^\s"';]+)""", re.IGNORECASE)


def parse_html(content: bytes | str, *, encoding: str | None = None) -> BeautifulSoup:
    """Parse a page as a browser does. `encoding` is the HTTP header's charset, if any.

    Bytes are decoded as a browser decodes them: by their byte order mark, else `encoding`,
    else the page's <meta charset>, else UTF-8 when they are valid UTF-8, else windows-1252.
    """
    if isinstance(content, str):
        return BeautifulSoup(content, builder=Html5TreeBuilder)
    return BeautifulSoup(content, builder=Html5TreeBuilder, from_encoding=encoding)


def charset(content_type: str | None) -> str | None:
    """The charset a Content-Type header names, if it names one (requests' `encoding` says
    ISO-8859-1 for any text without one, which would override the page's own <meta>)."""
    found = _CHARSET.search(content_type or "")
    return found.group(1) if found else None


def decode(data: bytes, transport: str | None = None) -> tuple[str, str]:
    """Decode a page's bytes as a browser does; return the text and the encoding used."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(name, "replace"), name
    declared = EncodingDetector.find_declared_encoding(data[:1024], is_html=True)
    for label in (transport, declared):
        name = _codec(label)
        if name is None:
            continue
        # A <meta> read as ASCII means the bytes are not UTF-16, whatever it says: the
        # standard reads such a page as UTF-8 (mechanicalsoup passes the <meta>'s label too).
        if name.startswith("utf-16") and declared is not None:
            name = "utf-8"
        return data.decode(name, "replace"), name
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("windows-1252", "replace"), "windows-1252"


def _codec(label: str | None) -> str | None:
    """The Python codec for an encoding label, or None for an unknown or non-text one."""
    if not label:
        return None
    label = label.strip().lower()
    if label in _WINDOWS_1252:
        return "windows-1252"
    try:
        name = codecs.lookup(label).name
        "a".encode(name)  # refuses bytes-to-bytes codecs such as "hex" or "zip"
    except (LookupError, ValueError):
        return None
    return name


class Html5TreeBuilder(HTMLTreeBuilder):
    """A BeautifulSoup tree builder that builds the tree Lexbor's HTML5 parser builds."""

    NAME = "gmid-html5"
    features = (NAME, HTML, PERMISSIVE)

    def prepare_markup(
        self,
        markup,
        user_specified_encoding=None,
        document_declared_encoding=None,
        exclude_encodings=None,
    ) -> Iterator[tuple[str, str | None, None, bool]]:
        """Decode bytes once, as a browser does (parse_html); text passes as it is."""
        if isinstance(markup, str):
            yield markup, None, None, False
            return
        text, encoding = decode(markup, user_specified_encoding)
        yield text, encoding, None, False

    def feed(self, markup: str) -> None:
        """Parse with Lexbor, then replay its tree into the soup."""
        tree = LexborHTMLParser(markup.encode("utf-8", "replace"))
        table_forms = self._replay(tree.root.parent)
        del tree  # Lexbor's tree is freed before the soup is used
        if table_forms:
            _adopt_controls(table_forms)

    def _replay(self, document) -> list[Tag]:
        """Hand every node under `document` to the soup, in order, without recursion; return
        the forms a table left empty.

        Elements deeper than MAX_DEPTH hang under their ancestor at that depth, as Chrome nests
        no deeper either: selectors that climb the tree cost at most MAX_DEPTH steps a node."""
        soup = self.soup
        table_forms: list[Tag] = []
        node, depth = document.child, 1
        while node is not None:
            name = node.tag
            if name.startswith("-"):
                self._leaf(node, name)
            else:
                attrs = node.attributes
                if None in attrs.values():  # <input disabled>: bs4 wants "" as lxml gives it
                    attrs = {k: "" if v is None else v for k, v in attrs.items()}
                tag = soup.handle_starttag(name, None, None, attrs)
                if name == "form" and node.parent.tag in _TABLE_PARENTS:
                    table_forms.append(tag)
                child = node.child
                if child is None or depth > MAX_DEPTH:
                    soup.handle_endtag(name)  # which ends the text before it
                if child is not None:
                    node, depth = child, depth + 1
                    continue
            while node.next is None:
                node, depth = node.parent, depth - 1
                if node is None or depth == 0:
                    return table_forms
                if depth <= MAX_DEPTH:
                    soup.handle_endtag(node.tag)
            node = node.next
        return table_forms

    def _leaf(self, node, kind: str) -> None:
        """Hand a text, comment or doctype node to the soup."""
        soup = self.soup
        if kind == "-text":
            soup.handle_data(node.text_content)
        elif kind == "-comment":
            soup.endData()
            soup.handle_data(node.html[len("<!--") : -len("-->")])
            soup.endData(Comment)
        elif kind == "-doctype":
            soup.endData()
            soup.handle_data(node.html[len("<!DOCTYPE ") : -1] or "html")
            soup.endData(Doctype)


def _adopt_controls(table_forms: list[Tag]) -> None:
    """Give each form a table left empty copies of the inputs a browser would send with it:
    those after it in its table, up to the next form. One pass from the first such form."""
    empty = {id(form) for form in table_forms}
    form, table = table_forms[0], table_forms[0].find_parent("table")
    owned: list[tuple[Tag, Tag]] = []
    for element in form.next_elements:
        if not isinstance(element, Tag):
            continue
        if element.name == "form":
            form = element if id(element) in empty else None
            table = form.find_parent("table") if form is not None else None
        elif _sent_with(element, form, table):
            owned.append((form, element))
    for form, element in owned:
        form.append(copy.copy(element))


def _sent_with(element: Tag, form: Tag | None, table: Tag | None) -> bool:
    """Whether a browser sends this element with that (empty) form of that table."""
    if form is None or element.name not in _CONTROLS or element.has_attr("form"):
        return False
    return any(parent is table for parent in element.parents)


# mechanicalsoup's Browser(soup_config=...): its pages (`browser.page`) are parse_html's trees.
SOUP_CONFIG = {"builder": Html5TreeBuilder}
