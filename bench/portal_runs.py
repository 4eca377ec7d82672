"""Portal runs: gmid fetching 20 portals against a plain sequential mechanicalsoup script.

One loopback server (a subprocess, so that its CPU does not share a GIL with either client)
serves 20 portals, /p01/ ... /p20/, each with a login form (CSRF field, session cookie, no code
step), 30 invoices listed 10 per page over 3 pages with a "next" link, and a distinct PDF of
30-100 KB per invoice. Every request waits 50 ms before it is answered, like a portal far away.
The server counts requests and document bytes; the benchmark reads the counts around each phase.

Each round, against the same server:
  (b) bare: a sequential mechanicalsoup script (subprocess) logs into every portal, reads every
      list page and downloads every PDF, writing and fsyncing each to a file: gmid promises
      durable documents, so the bare script pays for durable files too (not for an index).
  (a) gmid: `gmid daemon` with a fresh state dir and the 20 portals described in YAML,
      runs.concurrency 4; all 20 fetches are started over the control socket, timed from the
      first request to the last run's end. Every run must end "ok" with 30 new documents.
  (a2) the same daemon fetches all 20 again: the incremental run. It must download nothing.
Figures are medians over --rounds. Targets: b/a >= 3, a2/a <= 20 %, 0 document bytes in a2.

The JSON portals (--part json; --part html runs the above alone, the default runs both): 20
portals on a server of their own, each with the same HTML login form, a landing page, a JSON
list API (/pNN/api/invoices?page=N, 25 rows an answer, newest first, a `links.next` address)
and 100 PDFs at /pNN/api/invoices/ID/pdf. gmid (`documents.type: json`) runs them as above:
  (j) the first run, against the latency floor: the least requests the work needs (login page,
      login post and its redirect, every list answer, every document) times 50 ms, one after
      the other in a portal, the portals in waves of runs.concurrency. Target <= 1.15x.
  (jb) bare: a requests script (subprocess) doing the same logins, list answers and downloads,
      fsyncing each file, the portals on runs.concurrency threads: what the loopback server,
      the HTTP client and fsync cost on this machine over the latency alone.
  (j2) the incremental run: 0 document bytes, and no document nor detail request. The server
      counts requests by kind of path, printed for each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import math
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date, timedelta
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, GmidDaemon, cpu_seconds, free_port, median

from gmid.control.client import ControlClient

USER, PASSWORD = "bench", "pw"
PER_PAGE = 10

# -- the portal server (run as `portal_runs.py serve PORT PORTALS DOCS LATENCY`)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{body}</body></html>"""


def document(portal: int, doc: int) -> bytes:
    """The PDF of one invoice: 30-100 KB, bytes that differ for every portal and invoice."""
    rng = random.Random(portal * 100_003 + doc)
    body = rng.randbytes(rng.randrange(30_000, 100_000))
    head = f"%PDF-1.4\n% portal {portal} invoice {doc}\n1 0 obj\n<< /Length {len(body)} >>\n"
    return head.encode() + b"stream\n" + body + b"\nendstream\nendobj\n%%EOF\n"


class Portals:
    """The state of every portal; one instance serves every request, from many threads."""

    def __init__(self, portals: int, docs: int, json_per_page: int = 0):
        self.portals, self.docs = portals, docs
        # json_per_page > 0: the list is a JSON API (/pNN/api/invoices?page=N) and the
        # documents are /pNN/api/invoices/ID/pdf; the HTML list pages are not served.
        self.json_per_page = json_per_page
        self.paths: dict[str, int] = {}  # requests by kind of path, see kind_of()
        self.lock = threading.Lock()
        self.csrf: dict[str, str] = {}  # visitor cookie -> token
        self.sessions: dict[str, int] = {}  # session id -> portal number
        self.requests = self.documents = self.document_bytes = self.logins = 0

    def invoice(self, portal: int, k: int) -> dict[str, str]:
        day = date(2022, 1, 3) + timedelta(days=11 * k)
        return {
            "number": f"P{portal:02d}-{k + 1:04d}",
            "date": day.strftime("%d.%m.%Y"),
            "amount": f"{40 + 3 * k + portal},{(17 * k) % 100:02d}",
        }

    def handle(self, method: str, path: str, query: dict, form: dict, jar: dict):
        """Answer one request: (status, headers, body)."""
        parts = path.strip("/").split("/")
        try:
            portal = int(parts[0].removeprefix("p"))
        except ValueError:
            return 404, {}, b"no such portal"
        if not parts[0].startswith("p") or not 1 <= portal <= self.portals:
            return 404, {}, b"no such portal"
        base, rest = f"/p{portal:02d}", "/".join(parts[1:])
        logged_in = self.sessions.get(jar.get("sid", "")) == portal
        if rest == "login" and method == "POST":
            return self.login(portal, base, form, jar)
        if rest in ("", "login"):
            if logged_in:
                return 303, {"Location": f"{base}/invoices"}, b""
            return self.login_page(portal, base, jar.get("visitor"))
        if not logged_in:
            return 303, {"Location": f"{base}/login"}, b""
        if self.json_per_page:
            return self.json_route(portal, base, rest, query)
        if rest == "invoices":
            return self.list_page(portal, base, int((query.get("page") or ["1"])[0]))
        if rest.startswith("files/") and rest.endswith(".pdf"):
            k = int(rest.removeprefix("files/").removesuffix(".pdf")) - 1
            if not 0 <= k < self.docs:
                return 404, {}, b"not found"
            pdf = document(portal, k)
            with self.lock:
                self.documents += 1
                self.document_bytes += len(pdf)
            return 200, {"Content-Type": "application/pdf"}, pdf
        return 404, {}, b"not found"

    def json_route(self, portal: int, base: str, rest: str, query: dict):
        """The logged-in routes of a JSON portal: a landing page, the list API, the PDFs."""
        if rest == "invoices":  # where the login redirects: the page whose script asks the API
            body = f"""<p><a class="logout" href="{base}/logout">Log out</a></p>
<div id="app" data-api="{base}/api/invoices"></div>"""
            return 200, {}, self.page(portal, body)
        if rest == "api/invoices":
            return self.json_list(portal, base, int((query.get("page") or ["1"])[0]))
        prefix, suffix = "api/invoices/", "/pdf"
        if rest.startswith(prefix) and rest.endswith(suffix):
            number = rest.removeprefix(prefix).removesuffix(suffix)
            k = int(number.rpartition("-")[2]) - 1 if number.startswith(f"P{portal:02d}-") else -1
            if not 0 <= k < self.docs:
                return 404, {}, b"not found"
            pdf = document(portal, k)
            with self.lock:
                self.documents += 1
                self.document_bytes += len(pdf)
            return 200, {"Content-Type": "application/pdf"}, pdf
        return 404, {}, b"not found"

    def json_list(self, portal: int, base: str, number: int):
        """One answer of the list API: newest first, json_per_page rows, a next link."""
        per = self.json_per_page
        first = (number - 1) * per
        rows = []
        for k in reversed(range(max(0, self.docs - first - per), max(0, self.docs - first))):
            i = self.invoice(portal, k)
            day, month, year = i["date"].split(".")
            rows.append(
                {
                    "id": i["number"],
                    "issuedAt": f"{year}-{month}-{day}T10:12:00Z",
                    "invoiceNumber": i["number"],
                    "total": {"amountCents": 4000 + 300 * k + 100 * portal, "currency": "EUR"},
                    "status": "paid",
                    "links": {"self": f"{base}/api/invoices/{i['number']}"},
                }
            )
        more = self.docs > number * per
        answer = {
            "data": {"invoices": rows},
            "meta": {"total": self.docs, "page": number, "perPage": per},
            "links": {"next": f"{base}/api/invoices?page={number + 1}" if more else None},
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def login_page(self, portal: int, base: str, visitor: str | None, error: str = ""):
        visitor = visitor or secrets.token_hex(8)
        with self.lock:
            token = self.csrf.setdefault(visitor, secrets.token_hex(16))
        alert = f'<p class="alert">{html.escape(error)}</p>' if error else ""
        body = f"""{alert}<form id="login" method="post" action="{base}/login">
<input type="hidden" name="csrf" value="{token}">
<label>E-Mail <input type="text" name="email"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Log in</button></form>"""
        cookie = f"visitor={visitor}; Path={base}/; HttpOnly"
        return 200, {"Set-Cookie": cookie}, self.page(portal, body)

    def login(self, portal: int, base: str, form: dict, jar: dict):
        visitor = jar.get("visitor", "")
        if not visitor or self.csrf.get(visitor) != form.get("csrf"):
            return 403, {}, self.page(portal, '<p class="alert">Session expired.</p>')
        if (form.get("email"), form.get("password")) != (USER, PASSWORD):
            return self.login_page(portal, base, visitor, "Wrong e-mail or password.")
        sid = secrets.token_hex(16)
        with self.lock:
            self.sessions[sid] = portal
            self.logins += 1
        cookie = f"sid={sid}; Path={base}/; HttpOnly"
        return 303, {"Location": f"{base}/invoices", "Set-Cookie": cookie}, b""

    def list_page(self, portal: int, base: str, number: int):
        first = (number - 1) * PER_PAGE
        rows = "".join(
            f'<tr><td class="number">{i["number"]}</td><td class="date">{i["date"]}</td>'
            f'<td class="amount">{i["amount"]} €</td>'
            f'<td><a class="pdf" href="{base}/files/{k + 1}.pdf">PDF</a></td></tr>'
            for k in range(first, min(first + PER_PAGE, self.docs))
            for i in [self.invoice(portal, k)]
        )
        more = self.docs > number * PER_PAGE
        nxt = f'<a class="next" href="{base}/invoices?page={number + 1}">Next</a>' if more else ""
        body = f"""<p><a class="logout" href="{base}/logout">Log out</a></p>
<table class="invoices"><thead><tr><th>Number</th><th>Date</th><th>Amount</th><th></th></tr>
</thead><tbody>{rows}</tbody></table>{nxt}"""
        return 200, {}, self.page(portal, body)

    def page(self, portal: int, body: str) -> bytes:
        return PAGE.format(title=f"Supplier {portal:02d}", body=body).encode()

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {
                "requests": self.requests,
                "documents": self.documents,
                "document_bytes": self.document_bytes,
                "logins": self.logins,
                **{f"path_{kind}": n for kind, n in self.paths.items()},
            }


def kind_of(method: str, path: str) -> str:
    """The kind of a request, for the counts by path: login page, login post, landing page,
    list (HTML page or JSON answer), document, detail (one document's own page or answer)."""
    rest = "/".join(path.strip("/").split("/")[1:])
    if rest in ("", "login"):
        return "login_post" if method == "POST" else "login_page"
    if rest == "invoices":
        return "landing_or_list"
    if rest == "api/invoices":
        return "list"
    if rest.endswith(".pdf") or rest.endswith("/pdf"):
        return "document"
    if rest.startswith("api/invoices/"):
        return "detail"
    return "other"


def serve(port: int, portals: int, docs: int, latency: float, json_per_page: int = 0) -> None:
    """Serve the portals on 127.0.0.1:port until killed; /_stats answers at once, uncounted."""
    state = Portals(portals, docs, json_per_page)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real portals do
        # Without this, the body's write waits for the ACK of the headers' write, which the
        # client delays: 40 ms more per request (Nagle against delayed ACK).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode(errors="replace") if length else ""
            if url.path == "/_stats":
                self._send(200, {"Content-Type": "application/json"}, json.dumps(state.stats()))
                return
            kind = kind_of(method, url.path)
            with state.lock:
                state.requests += 1
                state.paths[kind] = state.paths.get(kind, 0) + 1
            time.sleep(latency)
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            jar = cookies.SimpleCookie(self.headers.get("Cookie", ""))
            status, headers, body = state.handle(
                method, url.path, parse_qs(url.query), form, {k: m.value for k, m in jar.items()}
            )
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: bytes | str) -> None:
            body = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # one thread per connection; the backlog only absorbs bursts

    Server(("127.0.0.1", port), Handler).serve_forever(0.05)


class PortalServer:
    """The portal server in a subprocess, and its counters."""

    def __init__(self, portals: int, docs: int, latency: float, json_per_page: int = 0):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [str(self.port), str(portals), str(docs), str(latency), str(json_per_page)]
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", *args], cwd=ROOT)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.stats()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the portal server did not start") from None
                time.sleep(0.02)

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.base}/_stats", timeout=5) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before.get(key, 0) for key in after}


# -- (b) the bare script

BARE = r"""
import os, sys, time
import mechanicalsoup

base, portals, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
files = 0
for i in range(1, portals + 1):
    browser = mechanicalsoup.StatefulBrowser()
    browser.open(f"{base}/p{i:02d}/login")
    browser.select_form("form#login")
    browser["email"] = "bench"
    browser["password"] = "pw"
    browser.submit_selected()  # redirected to the first list page
    assert browser.page.select_one("a.logout"), "login failed"
    while True:
        for link in browser.page.select("table.invoices tbody tr a.pdf"):
            response = browser.session.get(browser.absolute_url(link["href"]))
            response.raise_for_status()
            files += 1
            fd = os.open(os.path.join(out, f"{i}-{files}.pdf"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, response.content)
                os.fsync(fd)
            finally:
                os.close(fd)
        next_link = browser.page.select_one("a.next")
        if next_link is None:
            break
        browser.open(browser.absolute_url(next_link["href"]))
    browser.close()
print(time.perf_counter() - start, files)
"""


BARE_JSON = r"""
import os, re, sys, time
from concurrent.futures import ThreadPoolExecutor
import requests

base, portals, out, concurrency = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])


def portal(i):
    files = 0
    with requests.Session() as s:
        page = s.get(f"{base}/p{i:02d}/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        form = {"csrf": csrf, "email": "bench", "password": "pw"}
        page = s.post(f"{base}/p{i:02d}/login", data=form).text  # redirected to the landing page
        assert 'class="logout"' in page, "login failed"
        url = f"{base}/p{i:02d}/api/invoices"
        while url:
            answer = s.get(url, headers={"Accept": "application/json"}).json()
            for row in answer["data"]["invoices"]:
                response = s.get(f"{base}/p{i:02d}/api/invoices/{row['id']}/pdf")
                response.raise_for_status()
                path = os.path.join(out, row["id"] + ".pdf")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                try:
                    os.write(fd, response.content)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                files += 1
            url = answer["links"]["next"] and base + answer["links"]["next"]
    return files


start = time.perf_counter()
with ThreadPoolExecutor(concurrency) as pool:
    files = sum(pool.map(portal, range(1, portals + 1)))
print(time.perf_counter() - start, files)
"""


def run_bare(
    server: PortalServer, portals: int, script: str = BARE, *extra: str
) -> tuple[float, int]:
    """Run a bare script; return its time and how many files it wrote."""
    out = Path(tempfile.mkdtemp(prefix="gmid-bare", dir="/tmp"))
    try:
        result = subprocess.run(
            [sys.executable, "-c", script, server.base, str(portals), str(out), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds, files = result.stdout.split()
        assert int(files) == len(list(out.iterdir()))
        return float(seconds), int(files)
    finally:
        shutil.rmtree(out, ignore_errors=True)


# -- (a) gmid

# The HTML and the JSON portals log in alike; their lists differ.
LOGIN = """\
  - name: p{i:02d}
    company: Supplier {i:02d}
    username: {user}
    password: {{command: "echo {password}"}}
    enabled: false
    form:
      start: {base}/p{i:02d}/login
      login:
        form: "form#login"
        fields: {{username: email, password: password}}
        success: {{selector: "a.logout"}}
        failure: {{selector: ".alert"}}
"""

PORTAL = (
    LOGIN
    + """\
      documents:
        pages: [/p{i:02d}/invoices]
        rows: "table.invoices tbody tr"
        fields:
          id: {{selector: "td.number"}}
          date: {{selector: "td.date", formats: ["%d.%m.%Y"]}}
          number: td.number
          amount: {{selector: "td.amount", decimal: ","}}
        download: {{selector: "a.pdf"}}
        next: {{selector: "a.next"}}
"""
)


JSON_PORTAL = (
    LOGIN
    + """\
      documents:
        type: json
        pages: [/p{i:02d}/api/invoices]
        rows: "data.invoices"
        fields:
          id: {{path: id}}
          date: {{path: issuedAt, regex: "^([0-9-]{{10}})"}}
          number: {{path: invoiceNumber}}
          amount: {{path: total.amountCents, cents: true}}
        download: {{url: "/p{i:02d}/api/invoices/{{id}}/pdf"}}
        next: {{path: links.next}}
"""
)


def gmid_config(base: str, portals: int, concurrency: int, template: str = PORTAL) -> str:
    entries = "".join(
        template.format(i=i, base=base, user=USER, password=PASSWORD) for i in range(1, portals + 1)
    )
    return f"portals:\n{entries}runs:\n  concurrency: {concurrency}\n"


async def fetch_all(socket: Path, names: list[str]) -> tuple[float, list]:
    """Start every portal's run at once; return the time until the last ended, and the runs.

    One connection per portal: the daemon answers one connection's requests in order, and a
    `fetch` with wait holds its connection until the run ends.
    """
    clients = [await ControlClient.connect(socket) for _ in names]
    try:
        start = time.perf_counter()
        runs = await asyncio.gather(
            *(c.fetch(name, wait=True) for c, name in zip(clients, names, strict=True))
        )
        return time.perf_counter() - start, runs
    finally:
        for client in clients:
            await client.close()


def check_runs(runs: list, new: int) -> None:
    bad = [r for r in runs if r is None or r.outcome != "ok" or r.new_documents != new]
    if bad:
        shown = "; ".join(f"{r.portal}: {r.outcome} ({r.message})" for r in bad if r) or "none"
        raise AssertionError(f"{len(bad)} run(s) did not end ok with {new} new: {shown}")


def run_gmid(
    server: PortalServer, portals: int, docs: int, concurrency: int, template: str = PORTAL
) -> dict[str, float]:
    """A fresh daemon: the first run of every portal, then the incremental second run."""
    daemon = GmidDaemon(gmid_config(server.base, portals, concurrency, template))
    names = [f"p{i:02d}" for i in range(1, portals + 1)]
    try:
        proc = daemon.start()
        daemon.wait_ready()
        figures: dict[str, float] = {}
        for phase, new in (("first", docs), ("second", 0)):
            before, cpu = server.stats(), cpu_seconds(proc.pid)
            seconds, runs = asyncio.run(fetch_all(daemon.socket, names))
            served = delta(before, server.stats())
            check_runs(runs, new)
            figures[phase] = seconds
            figures[f"{phase}_cpu"] = cpu_seconds(proc.pid) - cpu
            figures[f"{phase}_requests"] = served["requests"]
            figures[f"{phase}_bytes"] = served["document_bytes"]
            figures[f"{phase}_logins"] = served["logins"]
            for key, n in served.items():
                if key.startswith("path_"):
                    figures[f"{phase}_{key}"] = n
        archive = daemon.dir / "archive"
        stored = [p for p in archive.rglob("*.pdf") if ".gmid-tmp" not in p.parts]
        assert len(stored) == portals * docs, f"the archive holds {len(stored)} PDFs"
        assert "Traceback" not in daemon.log_text(), daemon.log_text()
        return figures
    finally:
        daemon.stop()


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def html_part(args: argparse.Namespace) -> None:
    """The HTML portals: gmid against the bare sequential script."""
    print(
        f"HTML: {args.portals} portals x {args.docs} documents, {args.latency * 1000:.0f} ms per "
        f"request, gmid concurrency {args.concurrency}, {args.rounds} round(s)",
        flush=True,
    )
    server = PortalServer(args.portals, args.docs, args.latency)
    bare_times, rounds = [], []
    try:
        for n in range(1, args.rounds + 1):
            before = server.stats()
            seconds, files = run_bare(server, args.portals)
            bare = delta(before, server.stats())
            assert files == args.portals * args.docs, f"the bare script wrote {files} files"
            bare_times.append(seconds)
            g = run_gmid(server, args.portals, args.docs, args.concurrency)
            rounds.append(g)
            print(
                f"  round {n}: bare {seconds:.2f} s ({bare['requests']} requests); gmid first "
                f"{g['first']:.2f} s ({g['first_requests']:.0f} requests, daemon CPU "
                f"{g['first_cpu']:.2f} s), second {g['second']:.2f} s "
                f"({g['second_requests']:.0f} requests, {g['second_bytes']:.0f} document bytes, "
                f"daemon CPU {g['second_cpu']:.2f} s)",
                flush=True,
            )
    finally:
        server.stop()
    a, b = median([g["first"] for g in rounds]), median(bare_times)
    a2 = median([g["second"] for g in rounds])
    second_bytes = max(g["second_bytes"] for g in rounds)
    # What the latency alone costs: every request waits; gmid's portals run in waves.
    waves = math.ceil(args.portals / args.concurrency) * args.latency / args.portals
    floor_b = bare["requests"] * args.latency
    floor_a, floor_a2 = (rounds[-1][f"{phase}_requests"] * waves for phase in ("first", "second"))
    print(f"(b) bare sequential mechanicalsoup: {b:6.2f} s  (latency floor {floor_b:.2f} s)")
    print(
        f"(a) gmid, first run:                {a:6.2f} s  (latency floor {floor_a:.2f} s)  "
        f"b/a {b / a:.2f}x (target >= 3x: {verdict(b / a >= 3)})"
    )
    print(
        f"(a2) gmid, second run:              {a2:6.2f} s  (latency floor {floor_a2:.2f} s)  "
        f"a2/a {a2 / a:.1%} (target <= 20 %: {verdict(a2 / a <= 0.2)}), "
        f"{second_bytes:.0f} document bytes (target 0: {verdict(second_bytes == 0)})",
        flush=True,
    )


def over(a: float, b: float) -> float:
    """a / b, infinite when b is 0 (a run without latency: --latency 0 shows gmid's own cost)."""
    return a / b if b else math.inf


def by_path(figures: dict[str, float], phase: str) -> str:
    prefix = f"{phase}_path_"
    counts = {k.removeprefix(prefix): int(v) for k, v in figures.items() if k.startswith(prefix)}
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()) if n) or "none"


def json_part(args: argparse.Namespace) -> None:
    """The JSON portals: gmid against the latency floor of the requests the work needs."""
    docs, per = args.json_docs, args.json_per_page
    print(
        f"JSON: {args.portals} portals x {docs} documents, {per} per answer, "
        f"{args.latency * 1000:.0f} ms per request, gmid concurrency {args.concurrency}, "
        f"{args.rounds} round(s)",
        flush=True,
    )
    # The requests a portal needs at the least, one after the other: the login page, the
    # login's post and the page it redirects to, every answer of the list, every document.
    # The second run, with the session the first one saved, needs the first answer only (it
    # lists nothing new).
    login = 3
    need_first = login + math.ceil(docs / per) + docs
    need_second = 1
    waves = math.ceil(args.portals / args.concurrency)
    floor, floor2 = (need * waves * args.latency for need in (need_first, need_second))
    server = PortalServer(args.portals, docs, args.latency, json_per_page=per)
    rounds, bare_times = [], []
    try:
        for n in range(1, args.rounds + 1):
            before = server.stats()
            seconds, files = run_bare(server, args.portals, BARE_JSON, str(args.concurrency))
            bare = delta(before, server.stats())
            assert files == args.portals * docs, f"the bare script wrote {files} files"
            bare_times.append(seconds)
            g = run_gmid(server, args.portals, docs, args.concurrency, JSON_PORTAL)
            rounds.append(g)
            print(
                f"  round {n}: bare {seconds:.2f} s ({over(seconds, floor):.3f}x the floor, "
                f"{bare['requests']} requests); gmid first {g['first']:.2f} s "
                f"({over(g['first'], floor):.3f}x the floor; "
                f"{g['first_requests']:.0f} requests: {by_path(g, 'first')}; daemon CPU "
                f"{g['first_cpu']:.2f} s), second {g['second']:.2f} s "
                f"({g['second_requests']:.0f} requests: {by_path(g, 'second')}; "
                f"{g['second_bytes']:.0f} document bytes; daemon CPU {g['second_cpu']:.2f} s)",
                flush=True,
            )
    finally:
        server.stop()
    a, a2 = median([g["first"] for g in rounds]), median([g["second"] for g in rounds])
    b = median(bare_times)
    second_bytes = max(g["second_bytes"] for g in rounds)
    documents2 = max(g.get("second_path_document", 0) for g in rounds)
    details = max(g.get(f"{p}_path_detail", 0) for g in rounds for p in ("first", "second"))
    extra = max(g["first_requests"] for g in rounds) - args.portals * need_first
    print(
        f"(jb) bare requests, {args.concurrency} threads: {b:6.2f} s  {over(b, floor):.3f}x the "
        f"floor (what the loopback server, requests and fsync cost over the latency)"
    )
    print(
        f"(j) gmid, first run:   {a:6.2f} s  latency floor {floor:.2f} s "
        f"({args.portals} x {need_first} requests in {waves} waves)  {over(a, floor):.3f}x the "
        f"floor (target <= 1.15x: {verdict(over(a, floor) <= 1.15)}), a/jb {a / b:.3f}x; "
        f"requests beyond the needed: {extra}"
    )
    print(
        f"(j2) gmid, second run: {a2:6.2f} s  latency floor {floor2:.2f} s "
        f"({args.portals} x {need_second} requests)  {over(a2, floor2):.2f}x the floor, "
        f"a2/a {a2 / a:.1%}; {second_bytes:.0f} document bytes (target 0: "
        f"{verdict(second_bytes == 0)}), {documents2:.0f} document and {details:.0f} detail "
        f"requests (target 0: {verdict(documents2 == 0 and details == 0)})",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("html", "json", "both"), default="both", help="which portals to run"
    )
    parser.add_argument("--portals", type=int, default=20)
    parser.add_argument("--docs", type=int, default=30, help="documents per HTML portal")
    parser.add_argument("--json-docs", type=int, default=100, help="documents per JSON portal")
    parser.add_argument("--json-per-page", type=int, default=25, help="rows per JSON answer")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=4, help="gmid's runs.concurrency")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("html", "both"):
        html_part(args)
    if args.part in ("json", "both"):
        json_part(args)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        port, portals, docs, latency, json_per_page = sys.argv[2:7]
        serve(int(port), int(portals), int(docs), float(latency), int(json_per_page))
    else:
        sys.exit(main())
