"""The run's redactor: a portal's secrets blanked in every form a page or message may give them."""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from urllib.parse import quote, quote_plus

from gmid.portals.redact import MARKER, Redactor, logged_without

PASSWORD = 'Kanarien-Pw&<"é/ 7f3a'
USER = "kunde@example.org"


def _forms(secret: str) -> dict[str, str]:
    """The secret as portals echo it: escaped for HTML, URLs, JSON, JavaScript, Basic auth."""
    b64 = base64.b64encode
    return {
        "plain": secret,
        "html": html.escape(secret),
        "html without quotes": html.escape(secret, quote=False),
        "decimal entities": "".join(f"&#{ord(c)};" for c in secret),
        "hex entities": "".join(f"&#X{ord(c):X};" for c in secret),
        "mixed": "".join(f"&#x{ord(c):x};" if i % 2 else c for i, c in enumerate(secret)),
        "named entities": secret.replace("&", "&AMP;").replace("é", "&eacute;"),
        "url": quote(secret),
        "url, lower-case hex": re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(secret)),
        "form": quote_plus(secret),
        "json": json.dumps(secret),
        "json, utf-8": json.dumps(secret, ensure_ascii=False),
        "javascript": "".join(f"\\x{ord(c):02x}" for c in secret),
        "base64": b64(secret.encode()).decode(),
        "basic auth": b64(f"{USER}:{secret}".encode()).decode(),
        "base64, one byte in": b64(b"x" + secret.encode() + b"yz").decode(),
    }


def test_a_password_is_blanked_in_every_form_a_page_may_give_it():
    redactor = Redactor()
    redactor.add(PASSWORD)
    for name, form in _forms(PASSWORD).items():
        text = f"Anmeldung als {USER}: Passwort {form} falsch"
        said = redactor.text(text)
        assert form not in said, name
        assert said.startswith(f"Anmeldung als {USER}: Passwort ") and MARKER in said, name
        assert said.endswith(" falsch"), name
        for charset in ("utf-8", "cp1252"):
            page = redactor.page(f"<p>{text}</p>".encode(charset))
            assert form.encode(charset) not in page, (name, charset)
            assert MARKER.encode() in page and page.endswith(b" falsch</p>"), (name, charset)


def test_a_page_in_a_one_byte_charset_loses_the_password_too():
    redactor = Redactor()
    redactor.add(PASSWORD)
    page = f"<input value={quote(PASSWORD, encoding='latin-1')}>".encode()
    assert redactor.page(page) == b"<input value=[secret]>"


def test_codes_and_a_totp_secret_are_blanked_as_portals_print_them():
    redactor = Redactor()
    redactor.add(" 731952 ")  # as typed
    redactor.add_totp_secret("JBSW Y3DP EHPK 3PXP")
    said = redactor.text(
        "Code 731952 falsch (Rechnung 97319520); Schlüssel jbswy3dpehpk3pxp, JBSW Y3DP EHPK 3PXP"
    )
    assert said == "Code [secret] falsch (Rechnung 9[secret]0); Schlüssel [secret], [secret]"


def test_a_short_secret_is_blanked_only_where_it_stands_alone():
    redactor = Redactor()
    redactor.add("ab")
    said = redactor.text('Das Passwort "ab" (ab) ist zu kurz; abbrechen? grab')
    assert said == 'Das Passwort "[secret]" ([secret]) ist zu kurz; abbrechen? grab'
    assert redactor.page(b"<b>p=ab&x=1</b> table") == b"<b>p=[secret]&x=1</b> table"


def test_a_password_is_matched_as_written_so_a_word_in_another_case_stays():
    redactor = Redactor()
    redactor.add("demo")
    assert redactor.text("Demo Energie: Passwort demo falsch") == (
        "Demo Energie: Passwort [secret] falsch"
    )
    assert redactor.page(b"<h1>Demo Energie</h1>&#100;emo") == b"<h1>Demo Energie</h1>[secret]"


def test_without_secrets_text_and_pages_stay_as_they_are():
    redactor = Redactor()
    redactor.add("  ")
    assert redactor.text("Passwort falsch") == "Passwort falsch"
    assert redactor.text(None) is None
    assert redactor.page(b"<p>x</p>") == b"<p>x</p>"


def test_log_records_of_the_run_lose_its_secrets_with_their_traceback(caplog):
    redactor = Redactor()
    redactor.add(PASSWORD)
    log = logging.getLogger("connectors.test")
    with caplog.at_level(logging.INFO), logged_without(redactor):
        log.info("the portal said %r", f"Passwort {PASSWORD} falsch")
        try:
            raise ValueError(f"unexpected page: {html.escape(PASSWORD)}")
        except ValueError:
            log.exception("the run failed")
    text = caplog.text
    assert PASSWORD not in text and html.escape(PASSWORD) not in text
    assert "the portal said 'Passwort [secret] falsch'" in text
    assert "ValueError: unexpected page: [secret]" in text


def test_the_portals_own_name_stays_whole_though_the_password_is_part_of_it():
    """The demo's password is "demo": its portal demo-energie must not read "[secret]-energie"
    in the log, while the password alone is still blanked, in text and in pages."""
    redactor = Redactor()
    redactor.add("demo")
    redactor.keep("demo-energie", "Demo Energie", "kunde@example.org")
    assert redactor.text("demo-energie asks for a code") == "demo-energie asks for a code"
    assert redactor.text("the password demo is wrong") == "the password [secret] is wrong"
    page = b"<h1>demo-energie</h1><input name=pw value='demo'>"
    assert redactor.page(page) == b"<h1>demo-energie</h1><input name=pw value='[secret]'>"
