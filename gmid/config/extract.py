"""How PDF invoices are read: a company's `extract:` rules (gmid/documents/rules.py) and `ocr:`.

    companies:
      - name: Stadtwerke
        senders: ["@stadtwerke.example"]
        extract:
          number: {label: "Beleg-Nr."}
          date: {regex: "vom (\\d\\d\\.\\d\\d\\.\\d{4})", date_format: "%d.%m.%Y"}
          gross_total: {label: "Zu zahlen", decimal: ","}

Each problem names the file, the line and the option (companies[0].extract.date.regex).

    ocr:                     # scanned PDFs read by Tesseract (gmid/documents/ocr.py)
      enabled: true          # default: false
      languages: deu+fra+eng # Tesseract's language codes, joined by +
      pages: 5               # pages read at most
      timeout: 2m            # for one document
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from yaml.nodes import MappingNode, Node

from gmid.config.reader import Reader, is_null

if TYPE_CHECKING:
    from gmid.documents.ocr import OcrOptions
    from gmid.documents.rules import FieldRule

# gmid.documents is imported only for a config that uses it: the package brings pypdf and lxml,
# which a daemon that reads no PDF yet should not carry (its idle size).

RULE_KEYS = ("label", "regex", "date_format", "decimal")


def read_extract(r: Reader, node: Node | None, option: str) -> tuple[FieldRule, ...]:
    """Read a company's `extract:` mapping of field -> rule; problems go to the reader."""
    if is_null(node):
        return ()
    from gmid.documents.rules import RULE_FIELDS, FieldRule, rule_problem

    rules = []
    for field, rule_node in r.mapping(node, option, RULE_FIELDS).items():
        where = f"{option}.{field}"
        if is_null(rule_node) or not isinstance(rule_node, MappingNode):
            r.problem(rule_node, where, "expected a mapping with label: or regex:")
            continue
        m = r.mapping(rule_node, where, RULE_KEYS)
        rule = FieldRule(
            field,
            label=r.text(m.get("label"), f"{where}.label"),
            regex=r.text(m.get("regex"), f"{where}.regex"),
            date_format=r.text(m.get("date_format"), f"{where}.date_format"),
            decimal=r.text(m.get("decimal"), f"{where}.decimal"),
        )
        problem = rule_problem(rule)
        if problem is None:
            rules.append(rule)
            continue
        # rule_problem's message starts with the option it is about ("regex ...", "decimal:").
        key = problem.split()[0].rstrip(":")
        if key in RULE_KEYS and key in m:
            r.problem(m[key], f"{where}.{key}", problem)
        else:
            r.problem(rule_node, where, problem)
    return tuple(rules)


def read_ocr(r: Reader, node: Node | None) -> OcrOptions | None:
    """Read `ocr:`; None unless enabled."""
    if is_null(node):
        return None
    from gmid.documents.ocr import OcrOptions

    m = r.mapping(node, "ocr", ("enabled", "languages", "pages", "timeout"))
    default = OcrOptions()
    languages = r.text(m.get("languages"), "ocr.languages", default.languages).strip()
    if not re.fullmatch(r"[a-z][a-z_]+(?:\+[a-z][a-z_]+)*", languages):
        r.problem(
            m.get("languages"),
            "ocr.languages",
            f"{languages!r} is not a list of Tesseract language codes, such as deu+fra+eng",
        )
    pages = r.integer(m.get("pages"), "ocr.pages", default.pages, low=1)
    timeout = r.duration(m.get("timeout"), "ocr.timeout", timedelta(seconds=default.timeout))
    if not r.boolean(m.get("enabled"), "ocr.enabled", False):
        return None
    return OcrOptions(languages=languages, pages=pages, timeout=timeout.total_seconds())
