"""An API login whose one-time code goes to a request of its own, with a value read from an
earlier answer, shaped as Free Mobile's NextAuth login: after the password, the session's JSON
answer carries an `otpId` when the device is unknown, and the code typed is sent with it to an
OTP endpoint (`login.code` with `before`, `capture`, `url` and `body`)."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field

import pytest
import yaml

from connectors.form.connector import FormConnector
from gmid.errors import CodeRejected, PortalChanged, WrongCredentials
from tests.connectors.form.harness import PASSWORD, PDF, USER, Harness, as_json, html, ids
from tests.support.portal_http import Request, serve
from tests.support.runner import started_runner

CODE = "482913"
WRONG = "Code invalide ou expiré, veuillez réessayer."


@dataclass
class FreeMobile:
    """NextAuth: a CSRF token as JSON, the credentials, then the session's answer, which asks
    for a code on a device the portal does not trust."""

    trusted: bool = False  # the device is known: no code asked
    csrf: str = ""
    pending: dict[str, str] = field(default_factory=dict)  # session token -> its otpId
    verified: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)  # the otpIds the session answers gave

    def __call__(self, request: Request):
        routes = {
            ("GET", "/api/auth/csrf"): self.csrf_token,
            ("POST", "/api/auth/callback/credentials"): self.credentials,
            ("GET", "/api/auth/session"): self.session,
            ("POST", "/api/auth/otp"): self.otp,
            ("GET", "/account/conso-et-factures"): self.invoices,
            ("GET", "/pdf/facture"): self.pdf,
        }
        handler = routes.get((request.method, request.path))
        return handler(request) if handler else (404, {}, "not found")

    def csrf_token(self, request: Request):
        self.csrf = secrets.token_hex(32)
        cookie = f"next-auth.csrf-token={self.csrf}%7Cdigest; Path=/; HttpOnly"
        return as_json({"csrfToken": self.csrf}, headers=[("Set-Cookie", cookie)])

    def credentials(self, request: Request):
        form = {k: v[0] for k, v in request.form().items()}
        if (form.get("username"), form.get("password")) != (USER, PASSWORD):
            return as_json({"url": "https://x/account/login?error=CredentialsSignin"}, 401)
        token = secrets.token_urlsafe(24)
        if self.trusted:
            self.verified.add(token)
        else:
            self.pending[token] = secrets.token_hex(12)
        cookie = f"session-token={token}; Path=/; HttpOnly"
        return as_json({"url": "https://x/account/"}, headers=[("Set-Cookie", cookie)])

    def session(self, request: Request):
        token = request.cookies.get("session-token", "")
        answer: dict = {"user": {"name": USER}, "expires": "2026-12-31T00:00:00Z"}
        if token in self.pending:
            answer["otpId"] = self.pending[token]
            self.issued.append(answer["otpId"])
        return as_json(answer)

    def otp(self, request: Request):
        token = request.cookies.get("session-token", "")
        body = json.loads(request.body)
        if body.get("csrfToken") != self.csrf or body.get("otpId") != self.pending.get(token):
            return as_json({"error": "Session de vérification inconnue"}, 400)
        if body.get("code") != CODE:
            return as_json({"error": WRONG}, 400)
        self.verified.add(token)
        del self.pending[token]
        return as_json({"ok": True})

    def pdf(self, request: Request):
        if request.cookies.get("session-token") not in self.verified:
            return 403, {}, "forbidden"
        return 200, {"Content-Type": "application/pdf"}, PDF + request.query["date"][0].encode()

    def invoices(self, request: Request):
        if request.cookies.get("session-token") not in self.verified:
            return html("<form method='post'><input type='password' name='password'></form>")
        items = "".join(
            f"<div class='invoice'><a class='pdf' href='/pdf/facture?date=2025{m:02}01'>PDF</a>"
            "</div>"
            for m in (3, 2, 1)
        )
        return html(f"<a class='logout' href='/logout'>Déconnexion</a>{items}")


DESCRIPTION = """
start: URL/account/
login:
  type: json
  csrf: {page: /api/auth/csrf, path: csrfToken}
  url: /api/auth/callback/credentials
  encoding: form
  body: {csrfToken: "{csrf}", username: "{username}", password: "{password}", json: "true"}
  failure: {path: "contains(url, 'error=') && url"}
  code:
    before: [{url: /api/auth/session}]
    when: otpId
    capture: {otp_id: otpId}
    url: /api/auth/otp
    body: {otpId: "{otp_id}", code: "{code}", csrfToken: "{csrf}"}
    medium: sms
    failure: error
documents:
  pages: [/account/conso-et-factures]
  rows: div.invoice
  fields:
    date: {selector: a.pdf, attribute: href, regex: "date=([0-9]{8})", formats: ["%Y%m%d"]}
  download: a.pdf
"""


@pytest.fixture
def portal(tmp_path):
    free = FreeMobile()
    with serve(free) as served:
        yield free, Harness(served.url, served.requests, tmp_path)


def test_the_code_goes_to_its_own_request_with_the_otp_id_of_the_session_answer(portal):
    free, h = portal
    connector = h.connector(DESCRIPTION, codes=[CODE])
    connector.login()
    assert len(ids(connector)) == 3
    [asked] = h.asked
    assert asked.medium == "sms" and asked.retry_message is None
    [otp] = h.of("POST", "/api/auth/otp")
    assert len(h.of("GET", "/api/auth/session")) == 1
    sent = json.loads(otp.body)
    assert sent == {"otpId": free.issued[0], "code": CODE, "csrfToken": free.csrf}
    assert free.issued[0] in h.learned  # blanked in what the run shows


def test_a_wrong_code_is_asked_again_with_the_portals_words(portal):
    _, h = portal
    connector = h.connector(DESCRIPTION, codes=["000000", CODE])
    connector.login()
    assert len(ids(connector)) == 3
    assert [a.retry_message for a in h.asked] == [None, WRONG]
    assert [json.loads(r.body)["code"] for r in h.of("POST", "/api/auth/otp")] == ["000000", CODE]


def test_codes_refused_to_the_last_attempt_are_code_rejected_with_the_portals_words(portal):
    _, h = portal
    with pytest.raises(CodeRejected) as e:
        h.connector(DESCRIPTION, codes=["1", "2", "3"]).login()
    assert e.value.portal_message == WRONG
    assert len(h.asked) == 3


def test_a_trusted_device_is_asked_no_code(portal):
    free, h = portal
    free.trusted = True
    connector = h.connector(DESCRIPTION)  # asking anything fails the test
    connector.login()
    assert len(ids(connector)) == 3
    assert h.of("POST", "/api/auth/otp") == []


def test_a_wrong_password_is_refused_before_any_code(portal):
    _, h = portal
    with pytest.raises(WrongCredentials) as e:
        h.connector(DESCRIPTION, password="wrong horse").login()
    assert e.value.portal_message.endswith("error=CredentialsSignin")
    assert h.of("GET", "/api/auth/session") == [] and h.asked == []


def test_a_captured_value_the_answer_lacks_is_portal_changed_naming_it(portal):
    _, h = portal
    description = DESCRIPTION.replace("capture: {otp_id: otpId}", "capture: {otp_id: otp.id}")
    with pytest.raises(PortalChanged, match=r"login\.code\.capture\.otp_id: 'otp\.id' found"):
        h.connector(description).login()


CONFIG = """\
state_dir: {tmp}/state
archive:
  dir: {tmp}/archive
portals:
  - name: freemobile
    company: Free Mobile
    username: {user}
    password: {{env: FREE_PASSWORD}}
    form: {form}
"""


async def test_a_run_asks_the_code_as_a_challenge_and_a_wrong_one_again_with_the_words(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("FREE_PASSWORD", PASSWORD)
    free, path = FreeMobile(), tmp_path / "config.yaml"
    with serve(free) as served:
        form = json.dumps(yaml.safe_load(DESCRIPTION.replace("URL", served.url)))
        path.write_text(CONFIG.format(tmp=tmp_path, user=USER, form=form))
        async with started_runner(path) as (runner, _config, index):
            run = asyncio.ensure_future(runner.fetch("freemobile"))
            challenges = []
            for typed in ("000000", CODE):
                challenge = await _next_challenge(runner.broker, run)
                challenges.append(challenge)
                runner.broker.answer(challenge.id, typed)
            record = await run
            filed = index.count()
    assert (record.outcome, record.new_documents, filed) == ("ok", 3, 3), record.message
    assert [(c.kind, c.medium, c.retry_message) for c in challenges] == [
        ("code", "sms", None),
        ("code", "sms", WRONG),
    ]


async def _next_challenge(broker, run):
    for _ in range(1000):
        if pending := broker.pending():
            return pending[0]
        assert not run.done(), run.result().message
        await asyncio.sleep(0.01)
    raise AssertionError("no code was asked")


def problems(description: str) -> dict[str, str]:
    options = yaml.safe_load(description.replace("URL", "https://x.example"))
    return dict(FormConnector.check_options(options))


def test_the_description_has_no_problems():
    assert problems(DESCRIPTION) == {}


@pytest.mark.parametrize(
    ("old", "new", "option", "words"),
    [
        ("    medium: sms", "    medium: sms\n    field: code", "login.code.field", "{code} is"),
        ('code: "{code}", ', "", "login.code.body", "the code is not sent"),
        ('"{otp_id}"', '"{otp}"', "login.code.body.otpId", "unknown placeholder {otp}"),
        ("{otp_id: otpId}", "{code: otpId}", "login.code.capture.code", "a new name"),
        ("    url: /api/auth/otp\n", "", "login.code.before", "only with `login.code.url`"),
        ("when: otpId", "when: 'otpId ||'", "login.code.when.path", "invalid JSON path"),
    ],
)
def test_a_wrong_code_request_names_its_option(old, new, option, words):
    assert old in DESCRIPTION
    found = problems(DESCRIPTION.replace(old, new))
    assert words in found.get(option, ""), found
