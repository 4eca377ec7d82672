"""Documents read exactly: e-invoices (Factur-X / ZUGFeRD, XRechnung, EN 16931 CII and UBL).

This package imports nothing of gmid but gmid.errors; mail, portals and archive may use it.
"""

from gmid.documents.einvoice import read_einvoice
from gmid.documents.model import Address, EInvoice, Line, TaxBreakdown

__all__ = ["Address", "EInvoice", "Line", "TaxBreakdown", "read_einvoice"]
