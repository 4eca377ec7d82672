"""Seed a migrated pretix database: one organizer with customer accounts, one customer, one
event with a paid ticket, and ORDERS paid orders of that customer, each with its invoice PDF.

Run with pretix's own interpreter (PRETIX_CONFIG_FILE, DJANGO_SETTINGS_MODULE set) as
`seed_pretix.py OUT.json`; writes the customer, the organizer and event slugs, and per order its
code, secret, date, total and invoice number into OUT.json.
"""

import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import django

django.setup()

from django.db import transaction  # noqa: E402
from django_scopes import scopes_disabled  # noqa: E402
from pretix.base.models import (  # noqa: E402
    Event,
    InvoiceAddress,
    Order,
    OrderPayment,
    OrderPosition,
    Organizer,
)
from pretix.base.services.invoices import generate_invoice  # noqa: E402

EMAIL = "kunde@example.org"
PASSWORD = "kunden-passwort-1"
ORDERS = 3
PRICE = Decimal("119.00")


def seed() -> dict:
    tz = ZoneInfo("Europe/Berlin")
    organizer = Organizer.objects.create(name="Gmid Testveranstalter", slug="gmidtest")
    organizer.settings.customer_accounts = True
    customer = organizer.customers.create(
        email=EMAIL,
        name_parts={"_scheme": "full", "full_name": "Erika Kunde"},
        is_active=True,
        is_verified=True,
    )
    customer.set_password(PASSWORD)
    customer.save()

    event = Event.objects.create(
        organizer=organizer,
        name="Konferenz 2026",
        slug="konf26",
        currency="EUR",
        date_from=datetime(2026, 12, 31, 18, tzinfo=tz),
        live=True,
    )
    event.settings.timezone = "Europe/Berlin"
    event.settings.invoice_address_asked = True
    event.settings.invoice_generate = "paid"
    event.settings.invoice_numbers_prefix = "KONF-"
    event.settings.invoice_address_from_name = "Gmid Testveranstalter GmbH"
    event.settings.invoice_address_from = "Musterweg 1"
    event.settings.invoice_address_from_zipcode = "10115"
    event.settings.invoice_address_from_city = "Berlin"
    event.settings.invoice_address_from_country = "DE"
    tax = event.tax_rules.create(name={"en": "VAT"}, rate=Decimal("19.00"))
    item = event.items.create(
        name="Konferenzticket", default_price=PRICE, tax_rule=tax, admission=True
    )

    web = organizer.sales_channels.get(identifier="web")
    orders = []
    for n in range(ORDERS):
        when = datetime(2026, 3 + 3 * n, 10, 12, tzinfo=tz)
        with transaction.atomic():  # pretix books each order change as a transaction
            order = Order.objects.create(
                event=event,
                email=EMAIL,
                customer=customer,
                status=Order.STATUS_PAID,
                datetime=when,
                expires=when + timedelta(days=14),
                total=PRICE,
                locale="en",
                sales_channel=web,
            )
            OrderPosition.objects.create(
                order=order,
                item=item,
                variation=None,
                price=PRICE,
                tax_rate=tax.rate,
                tax_value=Decimal("19.00"),
                tax_rule=tax,
                positionid=1,
                attendee_name_parts={"_scheme": "full", "full_name": "Erika Kunde"},
            )
            order.payments.create(
                provider="manual",
                amount=PRICE,
                payment_date=when,
                state=OrderPayment.PAYMENT_STATE_CONFIRMED,
            )
            InvoiceAddress.objects.create(
                order=order,
                company="Kunde & Co. KG",
                is_business=True,
                name_parts={"_scheme": "full", "full_name": "Erika Kunde"},
                street="Hauptstr. 5",
                zipcode="20095",
                city="Hamburg",
                country="DE",
            )
            order.create_transactions()
        invoice = generate_invoice(order)  # renders the PDF at once: no celery, tasks run eagerly
        invoice.refresh_from_db()
        if not invoice.file:
            raise SystemExit(f"invoice {invoice.number} has no PDF")
        orders.append(
            {
                "code": order.code,
                "secret": order.secret,
                "invoice": invoice.number,
                "total": str(order.total),
                "date": when.date().isoformat(),
            }
        )
    return {
        "email": EMAIL,
        "password": PASSWORD,
        "organizer": organizer.slug,
        "event": event.slug,
        "orders": orders,
    }


if __name__ == "__main__":
    with scopes_disabled():
        seeded = seed()
    with open(sys.argv[1], "w") as out:
        json.dump(seeded, out, indent=1)
