"""Documents read exactly: e-invoices (Factur-X / ZUGFeRD, XRechnung, EN 16931 CII and UBL).

This package imports nothing of gmid but gmid.errors; mail, portals and archive may use it.
Its readers (lxml, pypdf) load when first used, not with the package: the config reads
gmid.documents.rules at start, and the daemon stays small while idle.
"""

from __future__ import annotations

from typing import Any

from gmid.documents.model import Address, EInvoice, Line, TaxBreakdown

__all__ = ["Address", "EInvoice", "Line", "TaxBreakdown"]


def __getattr__(name: str) -> Any:
    """gmid.documents.read_einvoice, imported when first asked for."""
    if name == "read_einvoice":
        from gmid.documents.einvoice import read_einvoice

        return read_einvoice
    raise AttributeError(f"module 'gmid.documents' has no attribute {name!r}")
