"""A company's VAT IDs and IBANs in the config (`companies[].vat_ids`, `.ibans`): a document
whose seller gives one of them is that company's."""

from __future__ import annotations

import re

from gmid.config.reader import Node, Reader
from gmid.errors import quoted

_VAT_ID = re.compile(r"[A-Z]{2}[0-9A-Z+*]{2,13}")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[0-9A-Z]{11,30}")


def normal(text: str) -> str:
    """A VAT ID or IBAN as compared: upper case, without spaces, dots or dashes."""
    return re.sub(r"[\s.-]", "", text).upper()


def iban_valid(iban: str) -> bool:
    """Whether an IBAN's check digits are right (ISO 13616: mod 97 is 1)."""
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def read_ids(r: Reader, node: Node | None, option: str, kind: str) -> tuple[str, ...]:
    """A list of VAT IDs (kind "vat_id") or IBANs (kind "iban"), normalised; each one that
    is not one is a problem at its line."""
    found: list[str] = []
    for i, item in enumerate(r.sequence(node, option)):
        text = r.text(item, f"{option}[{i}]")
        value = normal(text or "")
        if kind == "vat_id" and not _VAT_ID.fullmatch(value):
            r.problem(
                item, f"{option}[{i}]", f"{quoted(text or '')} is no VAT ID, like DE123456789"
            )
        elif kind == "iban" and not (_IBAN.fullmatch(value) and iban_valid(value)):
            r.problem(
                item,
                f"{option}[{i}]",
                f"{quoted(text or '')} is no IBAN (its check digits are wrong, or its form)",
            )
        elif value not in found:
            found.append(value)
    return tuple(found)
