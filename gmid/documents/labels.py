"""The words invoices use for their fields, in German, French, English and Dutch.

Each field has labels with a weight (how surely the label names that field); negative words
near a label say it names something else ("Lieferdatum" is no issue date, "Total HT" is no gross
total). Label patterns are lower-case and matched on lower-cased text; the others ignore case.
"""

from __future__ import annotations

import re

# Words that make a line a document's title line ("Rechnung", "Facture n° 12 du ...").
DOC_WORD = re.compile(
    r"(?:rechnung|gutschrift|\binvoice|\bfacture|\bavoir\b|\bfactuur|\bcredit note|\breceipt"
    r"|\bquittung|\bbeleg)",
    re.IGNORECASE,
)

NUMBER_LABELS: tuple[tuple[str, float], ...] = (
    (r"rechnungs[- ]?(?:nummer|nr\.?)", 3),
    (r"rechnung[ ]?(?:nr\.?|nummer|no\.?)", 3),
    (r"(?:gutschrift|beleg|storno)s?[- ]?(?:nummer|nr\.?)", 3),
    (r"(?:n°|no\.?|nº|num[ée]ro)[ ]?(?:de[ ]?)?(?:la[ ]?)?facture", 3),
    (r"facture[ ]?(?:n°|no\.?|nº|num[ée]ro)", 3),
    (r"avoir[ ]?(?:n°|no\.?|nº)", 3),
    (r"invoice[ ]?(?:number|no\.?|nr\.?|#|id\b|ref(?:erence)?\b)", 3),
    (r"(?:credit note|receipt|bill)[ ]?(?:number|no\.?|#)", 3),
    (r"factuur[ ]?(?:nummer|nr\.?)", 3),
    # "Handelsrechnung (380) 05.03.2018 Nr. 471102", "Facture n°562044387 du ..."
    (r"(?<![\w.])(?:nr\.|no\.|n°|nº|#)", 2),
    # A bare title ("INVOICE # 12", "Invoice INV/2023/03/0008") or a column headed "Factuur".
    (
        r"\b(?:invoice|rechnung|facture|factuur|gutschrift|avoir|credit note)\b"
        r"(?![ ]?(?:datum|date|adres|address|"
        r"total|totaal|betrag|summe|an\b|to\b|à\b|for\b|für\b))",
        1,
    ),
)
# Just before a number's label: it is another document's number ("Ursprungsbeleg-Nr").
NUMBER_NOT_BEFORE = re.compile(
    r"ursprung|original|bezug|storn|korrigiert|correct|r[ée]f[ée]rence|gem[äa]ß|bestellung",
    re.IGNORECASE,
)
NUMBER_NOT = re.compile(
    r"kunden|customer|client|klant|auftrag|order|bestell|commande|contract|vertrag|account|"
    r"konto|steuer|tax|ust|vat|tva|btw|seite|page|tel|fax|siret|siren|hrb|gln|ident|lieferschein",
    re.IGNORECASE,
)

DATE_LABELS: tuple[tuple[str, float], ...] = (
    (r"rechnungs[- ]?datum|belegdatum|ausstellungsdatum|datum der rechnung", 3),
    (r"date (?:de (?:la )?)?factur(?:e|ation)|date d'[ée]mission", 3),
    (r"invoice date|date of issue|issue date|billing date|invoice\b.{0,12}\bdated?", 3),
    (r"factuur ?datum", 3),
    (r"\b(?:datum|date|dated)\b", 2),
    (r"\b(?:du|vom|le)\b", 1.2),
)
DATE_NOT = re.compile(
    r"liefer|leistung|f[äa]llig|zahlbar|zahlungsziel|due|order|bestell|commande|[ée]ch[ée]ance|"
    r"limite|verval|check|period|zeitraum|p[ée]riode|delivery|livraison|geburt|birth|valid|"
    r"g[üu]ltig|bis\b|until|jusqu|start|end\b|begin|abonn|vertrag|contract|mandat|"
    r"pr[ée]l[èe]vement|associ|li[ée]e|d'origine|original|ursprung|bezug|stylesheet|version|"
    r"druck|print",
    re.IGNORECASE,
)

GROSS_LABELS: tuple[tuple[str, float], ...] = (
    (r"brutto|gesamtbetrag|gesamtsumme|rechnungsbetrag|rechnungssumme|endbetrag|endsumme", 4),
    (r"\bttc\b|total (?:g[ée]n[ée]ral|facture)|montant total", 4),
    (r"grand total|invoice total|total amount|total for this invoice|total incl|gross", 4),
    (r"factuur ?totaal|totaal (?:incl|bedrag)|inkl\.? (?:mwst|ust)|incl\.? (?:vat|btw)", 4),
    (r"zahlbetrag|zu zahlen|offener betrag|amount due|balance due|total due|amount payable", 2),
    (r"net [àa] payer", 3),
    (r"[àa] payer|montant d[ûu]|te betalen", 2),
    (r"\b(?:total|totaal|summe|gesamt|betrag|montant|amount)\b", 2),
)
# Before a label: what makes a total a part ("Zwischensumme", "Sub Total", "Netto-Gesamt").
GROSS_NOT_BEFORE = re.compile(
    r"sub|zwischen|teil|netto|\bnet\b|positions|preis|prix|prijs|price", re.IGNORECASE
)
# Between a label and its amount: what says the amount is not the gross one.
GROSS_NOT = re.compile(
    r"netto|\bnet\b|\bht\b|sub|zwischen|teil|positions|ohne|excl|exkl|hors|exclusief|\btax|"
    r"mwst|\bust\b|umsatzsteuer|steuer|\btva\b|\bvat\b|\bbtw\b|zuschl|abschl|anzahlung|rabatt|"
    r"skonto|discount|remise|korting|credit|prepaid|deposit|"
    r"charges\b|shipping|versand|porto|frais|\bpro\b|\bper\b|\bje\b|\bpar\b|\bunit|einzel|"
    r"\brate\b|\bprix\b",
    re.IGNORECASE,
)

VAT_LABEL = re.compile(
    r"ust[.\- ]*id|ust[.\- ]*nr|umsatzsteuer[- ]?id|mwst|vat|tva|btw|tax ?id|uid|"
    r"identifi|intracom",
    re.IGNORECASE,
)
# On the line before a VAT ID or an IBAN: it is the buyer's, not the seller's.
BUYER = re.compile(
    r"\bihre?\b|\byour\b|\buw\b|\bvotre\b|\bclient|\bkunde|customer|buyer|\bk[äa]ufer|"
    r"leistungsempf|rechnungsempf|acheteur|afnemer|bill to|ship to|sold to|invoice to|"
    r"billing address|shipping address|rechnungsadresse|lieferadresse|rechnung an\b|"
    r"adresse de (?:facturation|livraison)|factur[ée] [àa]|factuuradres|afleveradres|lastschrift|"
    r"pr[ée]l[èe]v|debit",
    re.IGNORECASE,
)

LANGUAGE_WORDS = {
    "de": r"\b(?:rechnung|und|der|die|das|mit|betrag|summe|datum|mwst|ust|für|bitte|zahlbar)\b",
    "fr": r"\b(?:facture|montant|les?|la|des?|du|pour|tva|ttc|total ht|règlement|paiement)\b",
    "en": r"\b(?:invoice|the|and|amount|total|date|tax|due|payment|please|for|of)\b",
    "nl": r"\b(?:factuur|het|een|van|btw|bedrag|totaal|datum|betaling|voor)\b",
}
_LANGUAGE_RE = {lang: re.compile(words) for lang, words in LANGUAGE_WORDS.items()}


def compile_labels(labels: tuple[tuple[str, float], ...]) -> tuple[tuple[re.Pattern, float], ...]:
    """The labels compiled to match lower-cased text (four times faster than IGNORECASE)."""
    return tuple((re.compile(p), w) for p, w in labels)


def guess_language(text: str) -> str:
    """de, fr, en or nl: whose common invoice words the text uses most."""
    sample = text[:10_000].lower()
    counts = {lang: len(r.findall(sample)) for lang, r in _LANGUAGE_RE.items()}
    return max(counts, key=lambda lang: counts[lang])


# Legal forms that end a company's name ("Lieferant GmbH", "Free SAS", "Coolblue B.V."), case
# as written; the name is the run of capitalised words before it.
LEGAL_FORM = re.compile(
    r"(?<=[\w.,)] )(?:GmbH & Co\. KG|GmbH & Co\.|g?GmbH|GMBH|AG|KGaA|KG|OHG|"
    r"UG \(haftungsbeschränkt\)|UG|e\.K\.|e\.V\.|a\.G\.|SE|SAS|SASU|SARL|EURL|SNC|S\.A\.|SA|"
    r"Ltd\.|Ltd|Limited|LLC|Inc\.|Inc|Corp\.|PLC|plc|B\.V\.|BV|N\.V\.|S\.r\.l\.|S\.p\.A\.)"
    r"(?![\w&])"
)
SELLER_CONTEXT = re.compile(
    r"verk[äa]ufer|lieferant|seller|supplier|vendor|sold by|fournisseur|vendeur|leverancier",
    re.IGNORECASE,
)
