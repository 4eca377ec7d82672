"""A company's `extract:` rules: how its PDF invoices write a field (see gmid/documents/rules.py).

    companies:
      - name: Stadtwerke
        senders: ["@stadtwerke.example"]
        extract:
          number: {label: "Beleg-Nr."}
          date: {regex: "vom (\\d\\d\\.\\d\\d\\.\\d{4})", date_format: "%d.%m.%Y"}
          gross_total: {label: "Zu zahlen", decimal: ","}

Each problem names the file, the line and the option (companies[0].extract.date.regex).
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node

from gmid.config.reader import Reader, is_null
from gmid.documents.rules import RULE_FIELDS, FieldRule, rule_problem

RULE_KEYS = ("label", "regex", "date_format", "decimal")


def read_extract(r: Reader, node: Node | None, option: str) -> tuple[FieldRule, ...]:
    """Read a company's `extract:` mapping of field -> rule; problems go to the reader."""
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
