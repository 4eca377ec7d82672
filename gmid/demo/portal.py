"""A small supplier portal on loopback for the demo (and the tests): login, SMS code, invoices.

It behaves like the real thing: a CSRF token in the login form, a session cookie, a one-time
code "sent by SMS" (printed to the log, or fixed with --code), a "remember this device" cookie
that spares the next code, and invoices over two pages, each a real PDF. User "demo", password
"demo". Run it alone with `gmid demo-portal`; `gmid daemon --demo` starts it by itself.

With `captcha="recaptcha"` (or "hcaptcha", "turnstile"; `gmid demo-portal --captcha recaptcha`)
the login form carries that widget's markup, and the login needs a token in its response field,
as with the real thing: `<nonce>.<HMAC-SHA256(captcha_secret, site_key.nonce)>`, each token good
once. Whoever knows the secret can make tokens (`captcha_token`): a test's solver command stands
in for a solving service that way. In a browser, ticking the demo widget's box fetches a token
from the portal and writes it where the real widget's script would.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import logging
import secrets
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from gmid.demo.pdf import simple_pdf

logger = logging.getLogger(__name__)

USER = PASSWORD = "demo"
PER_PAGE = 3

SITE_KEY = "6LdGmidDemoSiteKey-0123456789"
WIDGETS = {  # the widget's element class, and the field its script fills
    "recaptcha": ("g-recaptcha", "g-recaptcha-response"),
    "hcaptcha": ("h-captcha", "h-captcha-response"),
    "turnstile": ("cf-turnstile", "cf-turnstile-response"),
}
CAPTCHA_FAILED = "Die Sicherheitsprüfung ist fehlgeschlagen. Bitte versuchen Sie es erneut."
# Ticking the demo widget's box does what the real widget's script does: a token in its field.
WIDGET_SCRIPT = """<script>
function gmidDemoCheck(box, field) {
  fetch('/demo-captcha').then(function (r) { return r.text(); }).then(function (token) {
    var input = box.form.querySelector('[name="' + field + '"]');
    if (!input) {
      input = document.createElement('textarea');
      input.name = field;
      input.style.display = 'none';
      box.form.appendChild(input);
    }
    input.value = token;
  });
}
</script>"""

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Demo Energie</title></head>
<body><h1>Demo Energie: Kundenportal</h1>{nav}{body}</body></html>"""


def captcha_token(secret: str, site_key: str = SITE_KEY, nonce: str | None = None) -> str:
    """A token the demo portal takes once: what a solving service would hand out."""
    nonce = nonce or secrets.token_hex(8)
    mac = hmac.new(secret.encode(), f"{site_key}.{nonce}".encode(), hashlib.sha256).hexdigest()
    return f"{nonce}.{mac}"


def invoices(today: date, count: int = 6) -> list[dict[str, str]]:
    """The portal's invoices: one per month, the newest first."""
    found = []
    month = today.replace(day=1)
    for i in range(count):
        month = (month - timedelta(days=1)).replace(day=1)
        number = f"DE-{month:%Y%m}-{100 + i}"
        amount = f"{70 + 7 * i},{(13 * i) % 100:02d}"
        found.append({"number": number, "date": month.strftime("%d.%m.%Y"), "amount": amount})
    return found


class DemoPortal:
    """The portal's state; one instance serves every request."""

    def __init__(
        self,
        *,
        code: str | None = None,
        today: date | None = None,
        totp: str | None = None,
        expire_after: int | None = None,
        password: str = PASSWORD,
        captcha: str | None = None,
        captcha_secret: str | None = None,
    ):
        if captcha is not None and captcha not in WIDGETS:
            raise ValueError(f"captcha: one of {', '.join(WIDGETS)}, not {captcha!r}")
        self.fixed_code = code
        self.password = password
        self.captcha = captcha  # the widget guarding the login form, if any
        self.captcha_secret = captcha_secret or secrets.token_hex(16)
        self.tokens_used: set[str] = set()
        self.captcha_refused = 0
        self.totp = totp  # a secret: codes come from an authenticator app instead of an SMS
        self.expire_after = expire_after  # end the first session after this many list pages
        self.layout = "table"  # "changed": the list page no longer has its table
        self.pages_served: dict[str, int] = {}
        self.port = 0  # set once served
        self.invoices = invoices(today or date.today())
        self.lock = threading.Lock()
        self.csrf: dict[str, str] = {}  # visitor cookie -> token
        self.sessions: dict[str, str] = {}  # session id -> "code" | "in"
        self.codes: dict[str, str] = {}  # session id -> the code sent
        self.trusted: set[str] = set()  # remembered devices
        self.downloads = 0
        self.logins = 0  # successful password logins

    def handle(self, method: str, path: str, query: dict, form: dict, jar: dict):
        """Answer one request: (status, headers, body)."""
        sid = jar.get("sid", "")
        state = self.sessions.get(sid)
        if path == "/" or (path == "/login" and method == "GET"):
            if state == "in":
                return 303, {"Location": "/invoices"}, b""
            return self.login_page(jar.get("visitor"))
        if path == "/login" and method == "POST":
            return self.login(form, jar)
        if path == "/demo-captcha" and self.captcha:
            token = captcha_token(self.captcha_secret).encode()
            return 200, {"Content-Type": "text/plain"}, token
        if path == "/otp":
            if state != "code":
                return 303, {"Location": "/login"}, b""
            if method == "POST":
                return self.check_code(sid, form)
            return self.code_page()
        if state != "in":
            return 303, {"Location": "/login"}, b""
        if path == "/invoices":
            return self.invoice_list(sid, int((query.get("page") or ["1"])[0]))
        if path.startswith("/files/") and path.endswith(".pdf"):
            return self.file(path.removeprefix("/files/").removesuffix(".pdf"))
        if path == "/logout":
            self.sessions.pop(sid, None)
            return 303, {"Location": "/login"}, b""
        return 404, {}, self.page("<p>Seite nicht gefunden</p>")

    def invoice_list(self, sid: str, page: int):
        """The invoice list of a logged-in session, unless the portal ends the session now."""
        with self.lock:
            served = self.pages_served[sid] = self.pages_served.get(sid, 0) + 1
        if self.expire_after is not None and served > self.expire_after:
            # The portal ends a session on its own terms (once: then it behaves).
            self.expire_after = None
            self.sessions.pop(sid, None)
            return 303, {"Location": "/login"}, b""
        return self.invoice_page(page)

    def page(self, body: str, *, logged_in: bool = False) -> bytes:
        nav = '<p><a class="logout" href="/logout">Abmelden</a></p>' if logged_in else ""
        return PAGE.format(nav=nav, body=body).encode()

    def login_page(self, visitor: str | None, error: str = ""):
        visitor = visitor or secrets.token_hex(8)
        with self.lock:
            token = self.csrf.setdefault(visitor, secrets.token_hex(16))
        alert = f'<p class="alert">{html.escape(error)}</p>' if error else ""
        body = f"""{alert}<form id="login" method="post" action="/login">
<input type="hidden" name="csrf" value="{token}">
<label>E-Mail <input type="text" name="email"></label>
<label>Passwort <input type="password" name="password"></label>
{self.widget()}<button type="submit">Anmelden</button></form>"""
        return 200, {"Set-Cookie": f"visitor={visitor}; Path=/; HttpOnly"}, self.page(body)

    def login(self, form: dict, jar: dict):
        visitor = jar.get("visitor", "")
        if not visitor or self.csrf.get(visitor) != form.get("csrf"):
            return 403, {}, self.page('<p class="alert">Sitzung abgelaufen, bitte neu laden.</p>')
        if self.captcha and not self.token_ok(form.get(WIDGETS[self.captcha][1], "")):
            with self.lock:
                self.captcha_refused += 1
            return self.login_page(visitor, CAPTCHA_FAILED)
        if (form.get("email"), form.get("password")) != (USER, self.password):
            return self.login_page(visitor, "E-Mail-Adresse oder Passwort ist falsch.")
        sid = secrets.token_hex(16)
        with self.lock:
            self.logins += 1
        if jar.get("device") in self.trusted:
            with self.lock:
                self.sessions[sid] = "in"
            return 303, {"Location": "/invoices", "Set-Cookie": _sid(sid)}, b""
        code = self.fixed_code or f"{secrets.randbelow(10**6):06d}"
        with self.lock:
            self.sessions[sid] = "code"
            self.codes[sid] = code
        if not self.totp:
            logger.warning("demo portal: SMS to +49 170 ***12: your Demo Energie code is %s", code)
        return 303, {"Location": "/otp", "Set-Cookie": _sid(sid)}, b""

    def widget(self) -> str:
        """The captcha widget's markup, as the portal's HTML has it (no response field yet)."""
        if not self.captcha:
            return ""
        css, field = WIDGETS[self.captcha]
        return (
            f'<div class="{css}" data-sitekey="{SITE_KEY}"><label><input type="checkbox" '
            f"onclick=\"gmidDemoCheck(this, '{field}')\"> Ich bin kein Roboter (Demo)</label>"
            f"</div>{WIDGET_SCRIPT}"
        )

    def token_ok(self, token: str) -> bool:
        """Check a widget's token as the portal's server would ask the captcha service."""
        nonce, _, _mac = token.partition(".")
        expected = captcha_token(self.captcha_secret, SITE_KEY, nonce)
        with self.lock:
            if not nonce or token in self.tokens_used:
                return False
            if not hmac.compare_digest(token, expected):
                return False
            self.tokens_used.add(token)
        return True

    def code_page(self, error: str = ""):
        wrong = f'<p class="error">{html.escape(error)}</p>' if error else ""
        hint = (
            "Geben Sie den Code aus Ihrer Authenticator-App ein."
            if self.totp
            else "Wir haben Ihnen einen Code per SMS an +49 170 ***12 gesendet."
        )
        body = f"""<p class="hint">{hint}</p>
{wrong}<form id="otp" method="post" action="/otp">
<input type="text" name="code" inputmode="numeric">
<label><input type="checkbox" name="remember" value="1" checked> Dieses Gerät merken</label>
<button type="submit">Bestätigen</button></form>"""
        return 200, {}, self.page(body)

    def check_code(self, sid: str, form: dict):
        given = form.get("code", "").strip()
        if self.totp:
            import pyotp

            right = pyotp.TOTP(self.totp).verify(given, valid_window=1)
        else:
            right = given == self.codes.get(sid)
        if not right:
            return self.code_page("Der Code ist falsch. Bitte versuchen Sie es erneut.")
        headers = {"Location": "/invoices"}
        with self.lock:
            self.sessions[sid] = "in"
            self.codes.pop(sid, None)
            if form.get("remember"):
                device = secrets.token_hex(16)
                self.trusted.add(device)
                headers["Set-Cookie"] = f"device={device}; Path=/; Max-Age=2592000; HttpOnly"
        return 303, headers, b""

    def invoice_page(self, number: int):
        rows = self.invoices[(number - 1) * PER_PAGE : number * PER_PAGE]
        lines = "".join(
            f'<tr><td class="number">{i["number"]}</td><td class="date">{i["date"]}</td>'
            f'<td class="amount">{i["amount"]} €</td>'
            f'<td><a class="pdf" href="/files/{i["number"]}.pdf">PDF</a></td></tr>'
            for i in rows
        )
        more = len(self.invoices) > number * PER_PAGE
        next_link = f'<a class="next" href="/invoices?page={number + 1}">Weiter</a>' if more else ""
        if self.layout == "changed":
            items = "".join(f"<li>{i['number']}</li>" for i in rows)
            return 200, {}, self.page(f'<ul class="docs">{items}</ul>', logged_in=True)
        body = f"""<table class="invoices"><thead><tr><th>Nummer</th><th>Datum</th>
<th>Betrag</th><th></th></tr></thead><tbody>{lines}</tbody></table>{next_link}"""
        return 200, {}, self.page(body, logged_in=True)

    def file(self, number: str):
        for i in self.invoices:
            if i["number"] == number:
                with self.lock:
                    self.downloads += 1
                lines = ["Demo Energie GmbH", f"Rechnung {number}", f"Datum: {i['date']}"]
                pdf = simple_pdf([*lines, f"Betrag: {i['amount']} EUR"])
                return 200, {"Content-Type": "application/pdf"}, pdf
        return 404, {}, b"not found"


def _sid(sid: str) -> str:
    return f"sid={sid}; Path=/; HttpOnly"


def make_server(portal: DemoPortal, host: str = "127.0.0.1", port: int = 8089):
    """An HTTP server for the portal (not yet serving)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1 << 20)).decode(errors="replace")
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
            status, headers, body = portal.handle(
                method, url.path, parse_qs(url.query), form, {k: m.value for k, m in jar.items()}
            )
            self.send_response(status)
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            logger.debug("demo portal: " + format, *args)

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(portal: DemoPortal, port: int = 8089) -> ThreadingHTTPServer:
    """Start the portal in a daemon thread; the caller shuts the server down."""
    server = make_server(portal, port=port)
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    return server


@contextlib.contextmanager
def running(portal: DemoPortal, port: int = 8089) -> Iterator[DemoPortal]:
    """Serve the portal for the duration of a `with` block; `portal.port` is where."""
    server = serve_in_thread(portal, port)
    portal.port = server.server_address[1]
    try:
        yield portal
    finally:
        server.shutdown()
        server.server_close()
