"""Captcha widgets (reCAPTCHA, hCaptcha, Turnstile): found on a page, their token asked and sent.

Detection is tested on static HTML; the token's way through the form connector against the demo
portal on loopback with its reCAPTCHA-style widget (DemoPortal(captcha=...)), which checks each
token against its own secret, as a portal asks the captcha service.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

from connectors.base import CodeRequest, PortalContext, TokenRequest
from connectors.form.connector import FormConnector
from connectors.form.spec import read_spec
from connectors.form.widgets import Widget, WidgetSpec, find_widget
from gmid.demo.portal import CAPTCHA_FAILED, SITE_KEY, DemoPortal, captcha_token, running
from gmid.errors import CaptchaUnsolved, WrongCredentials
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.portals.test_runs import PORTAL
from tests.support.portal_http import Request, serve

SECRET = "demo-captcha-secret"
CODE = "135790"


def page(body: str) -> BeautifulSoup:
    return BeautifulSoup(f"<html><body>{body}</body></html>", "html.parser")


LOGIN = "<form id='login'><input name='user'><input type='password' name='pw'>{}</form>"


def found(body: str, spec: WidgetSpec | None = None) -> Widget | None:
    soup = page(body)
    return find_widget(soup, soup.select_one("form#login"), spec or WidgetSpec())


# -- detection on static HTML


RECAPTCHA = "<div class='g-recaptcha' data-sitekey='6LcK'></div>"
HCAPTCHA = "<div class='h-captcha' data-sitekey='10000000-ffff'></div>"
TURNSTILE = "<div class='cf-turnstile' data-sitekey='0x4AAA'></div>"


@pytest.mark.parametrize(
    ("markup", "widget", "key", "fields"),
    [
        (RECAPTCHA, "recaptcha", "6LcK", ("g-recaptcha-response",)),
        # hCaptcha's script fills both, for servers written for reCAPTCHA
        (HCAPTCHA, "hcaptcha", "10000000-ffff", ("h-captcha-response", "g-recaptcha-response")),
        (TURNSTILE, "turnstile", "0x4AAA", ("cf-turnstile-response",)),
    ],
)
def test_each_widget_is_recognised_with_its_site_key_and_field(markup, widget, key, fields):
    assert found(LOGIN.format(markup)) == Widget(widget, key, fields)


def test_a_bare_site_key_element_is_told_by_the_script_the_page_loads():
    bare = "<div id='check' data-sitekey='k-1'></div>"
    assert found(LOGIN.format(bare)) is None  # whose widget? not ours to guess
    hcaptcha = "<script src='https://js.hcaptcha.com/1/api.js' async></script>"
    assert found(LOGIN.format(bare) + hcaptcha).widget == "hcaptcha"
    turnstile = "<script src='https://challenges.cloudflare.com/turnstile/v0/api.js'></script>"
    assert found(LOGIN.format(bare) + turnstile).widget == "turnstile"
    recaptcha = "<script src='https://www.google.com/recaptcha/api.js'></script>"
    assert found(LOGIN.format(bare) + recaptcha).widget == "recaptcha"


def test_the_widget_in_the_login_form_wins_over_one_elsewhere_in_the_page():
    newsletter = "<form id='news'><div class='g-recaptcha' data-sitekey='news-key'></div></form>"
    login = LOGIN.format("<div class='cf-turnstile' data-sitekey='login-key'></div>")
    assert found(newsletter + login).site_key == "login-key"
    assert found(newsletter + LOGIN.format("")).site_key == "news-key"  # outside: still ours
    assert found(LOGIN.format("")) is None


def test_an_invisible_recaptcha_says_so():
    button = "<button class='g-recaptcha' data-sitekey='6LcI' data-size='invisible'>Go</button>"
    assert found(LOGIN.format(button)).invisible is True
    assert found(LOGIN.format(RECAPTCHA)).invisible is False


def test_a_site_key_given_to_the_script_in_code_is_found():
    body = LOGIN.format("<div class='g-recaptcha' id='rc'></div>") + (
        "<script>grecaptcha.render('rc', {'sitekey': '6LcCodeKey_abc-123'});</script>"
    )
    assert found(body).site_key == "6LcCodeKey_abc-123"


def test_the_description_overrides_what_the_page_says():
    drawn_by_code = LOGIN.format("<div id='box'></div>")
    assert found(drawn_by_code) is None
    spec = WidgetSpec(widget="recaptcha", site_key="6LcGiven")
    assert found(drawn_by_code, spec) == Widget("recaptcha", "6LcGiven", ("g-recaptcha-response",))
    spec = WidgetSpec(widget="hcaptcha", selector="#box", field="captcha_token")
    assert found(drawn_by_code, spec) == Widget("hcaptcha", "", ("captcha_token",))
    assert found(LOGIN.format(""), spec) is None  # the selector says when it is there
    off = WidgetSpec(enabled=False)
    assert found(LOGIN.format("<div class='g-recaptcha' data-sitekey='k'></div>"), off) is None


def test_captcha_widget_options_are_checked_with_their_paths():
    base = {
        "start": "https://p.example/",
        "documents": {"pages": "/x", "rows": "tr", "download": "a"},
    }
    spec, problems = read_spec({**base, "captcha_widget": {"widget": "recaptcha", "attempts": 5}})
    assert problems == [] and spec.widget == WidgetSpec(widget="recaptcha", attempts=5)
    assert read_spec({**base, "captcha_widget": False})[0].widget.enabled is False
    assert read_spec(base)[0].widget == WidgetSpec()  # on by default
    _, problems = read_spec(
        {
            **base,
            "captcha_widget": {"widget": "recaptha", "selector": "div[", "attempts": 0, "x": 1},
        }
    )
    found_problems = dict(problems)
    assert found_problems["captcha_widget.widget"].endswith("did you mean 'recaptcha'?")
    assert found_problems["captcha_widget.selector"].startswith("invalid CSS selector")
    assert found_problems["captcha_widget.attempts"].startswith("expected a whole number")
    assert found_problems["captcha_widget.x"].startswith("unknown option")


# -- through the form connector, against the demo portal


def options(port: int, **widget) -> dict:
    text = PORTAL.format(port=port, password="demo", code_timeout="30s")
    form = yaml.safe_load(text)["portals"][0]["form"]
    if widget:
        form["captcha_widget"] = widget
    return form


class Asker:
    """Answers the portal's questions from a script, and keeps what was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked: list = []

    def __call__(self, request):
        self.asked.append(request)
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer


def solved(request: TokenRequest) -> str:
    """A solving service's answer: it knows the demo portal's secret."""
    return captcha_token(SECRET, request.site_key)


def connector(port: int, ask, password: str = "demo", **widget) -> FormConnector:
    ctx = PortalContext(
        portal="energie",
        username="demo",
        password=lambda: password,
        browser=make_browser(HttpPolicy(timeout=10)),
        ask=ask,
        wait_approval=lambda request, poll: None,
        save_page=lambda name, body: Path("/nonexistent"),
        read_body=read_body,
        options=options(port, **widget),
    )
    return FormConnector(ctx)


@pytest.fixture
def demo(request):
    kind = getattr(request, "param", "recaptcha")
    with running(DemoPortal(code=CODE, captcha=kind, captcha_secret=SECRET), port=0) as portal:
        yield portal


@pytest.mark.parametrize("demo", ["recaptcha", "hcaptcha", "turnstile"], indirect=True)
def test_the_token_goes_into_the_field_the_widgets_script_would_have_made(demo):
    static = BeautifulSoup(demo.login_page(None)[2], "html.parser")
    assert not static.select("[name$=-response]")  # the widget's script would make it
    ask = Asker(solved, CODE)
    c = connector(demo.port, ask)
    c.login()
    token, code = ask.asked
    assert token == TokenRequest(demo.captcha, SITE_KEY, f"http://127.0.0.1:{demo.port}/login")
    assert "Solve the" in token.prompt and token.retry_message is None
    assert isinstance(code, CodeRequest)
    assert len(list(c.documents())) == 6 and demo.captcha_refused == 0


def test_a_refused_token_is_asked_again_with_the_portals_words(demo):
    ask = Asker("03AFcWeA-not-a-token", solved, CODE)
    connector(demo.port, ask).login()
    first, second, _code = ask.asked
    assert first.retry_message is None and second.retry_message == CAPTCHA_FAILED
    assert demo.captcha_refused == 1 and demo.logins == 1


def test_tokens_refused_every_time_end_as_captcha_unsolved(demo):
    ask = Asker(*["wrong"] * 10)
    failure = {"selector": ".alert:-soup-contains('Sicherheitsprüfung')"}
    with pytest.raises(CaptchaUnsolved) as info:
        connector(demo.port, ask, failure=failure, attempts=2).login()
    assert len(ask.asked) == 2 and demo.captcha_refused == 2
    assert info.value.portal_message == CAPTCHA_FAILED
    assert "refused 2 captcha tokens" in str(info.value)


def test_a_wrong_password_with_a_failure_selector_is_wrong_credentials_at_once(demo):
    failure = {"selector": ".alert:-soup-contains('Sicherheitsprüfung')"}
    ask = Asker(solved, solved)
    with pytest.raises(WrongCredentials) as info:
        connector(demo.port, ask, password="nope", failure=failure).login()
    assert len(ask.asked) == 1  # the password is not tried again
    assert info.value.portal_message == "E-Mail-Adresse oder Passwort ist falsch."


def test_a_wrong_password_in_the_same_box_is_tried_attempts_times_then_wrong_credentials(demo):
    # Without captcha_widget.failure, the login failure's words may be about either: a new
    # token is asked with them, and after `attempts` the password is not tried again.
    ask = Asker(solved, solved, solved)
    with pytest.raises(WrongCredentials) as info:
        connector(demo.port, ask, password="nope").login()
    assert [r.retry_message for r in ask.asked] == [
        None,
        "E-Mail-Adresse oder Passwort ist falsch.",
        "E-Mail-Adresse oder Passwort ist falsch.",
    ]
    assert info.value.portal_message == "E-Mail-Adresse oder Passwort ist falsch."
    assert "captcha_widget.failure" in str(info.value)


def test_a_widget_on_the_code_page_is_answered_with_the_code(tmp_path):
    """A portal that shows its check with the one-time code, not with the password."""
    sessions: dict[str, str] = {}

    def handler(request: Request):
        sid = request.cookies.get("sid", "")
        form = {k: v[-1] for k, v in request.form().items()}
        if request.path == "/login" and request.method == "GET":
            return (
                200,
                {"Content-Type": "text/html"},
                (
                    "<form method='post' action='/login'><input name='user'>"
                    "<input type='password' name='pw'></form>"
                ),
            )
        if request.path == "/login":
            sessions["s1"] = "code"
            return 303, {"Location": "/otp", "Set-Cookie": "sid=s1; Path=/"}, b""
        if request.path == "/otp" and request.method == "POST":
            if form.get("otp") == CODE and form.get("cf-turnstile-response") == "tok-1":
                sessions[sid] = "in"
                return 303, {"Location": "/invoices"}, b""
            return 303, {"Location": "/otp?error=1"}, b""
        if request.path == "/otp":
            error = "<p class='error'>Prüfung fehlgeschlagen</p>" if request.query else ""
            return (
                200,
                {"Content-Type": "text/html"},
                (
                    f"{error}<form id='otp' method='post' action='/otp'><input name='otp'>"
                    "<div class='cf-turnstile' data-sitekey='0x4AAB'></div></form>"
                ),
            )
        if sessions.get(sid) == "in":
            return 200, {"Content-Type": "text/html"}, "<a class='logout'>x</a>"
        return 303, {"Location": "/login"}, b""

    with serve(handler) as portal:
        description = {
            "start": f"{portal.url}/login",
            "login": {"fields": {"username": "user", "password": "pw"}, "success": "a.logout"},
            "code": {"form": "form#otp", "field": "otp", "failure": ".error"},
            "documents": {"pages": "/invoices", "rows": "tr", "download": "a"},
        }
        ask = Asker(CODE, "tok-0", CODE, "tok-1")
        ctx = PortalContext(
            portal="p",
            username="u",
            password=lambda: "pw",
            browser=make_browser(HttpPolicy(timeout=10)),
            ask=ask,
            wait_approval=lambda request, poll: None,
            save_page=lambda name, body: tmp_path / name,
            read_body=read_body,
            options=description,
        )
        FormConnector(ctx).login()
    code, token, code_again, _ = ask.asked
    assert isinstance(code, CodeRequest) and code_again.retry_message == "Prüfung fehlgeschlagen"
    assert (token.widget, token.site_key) == ("turnstile", "0x4AAB")
    assert token.page_url == f"{portal.url}/otp"


# -- the broker carries the token challenge


async def test_the_token_challenge_carries_the_widget_and_a_pasted_token_is_cleaned(tmp_path):
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    broker = ChallengeBroker(bus, image_dir=tmp_path / "img")
    request = TokenRequest("recaptcha", "6LcK", "https://shop.example/login", retry_message="no")
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "shop", request))
    try:
        for _ in range(500):
            if broker.pending():
                break
            await asyncio.sleep(0.01)
        [challenge] = broker.pending()
        data = challenge.to_dict()
        json.dumps(data)
        assert (data["kind"], data["widget"], data["site_key"]) == ("token", "recaptcha", "6LcK")
        assert data["page_url"] == "https://shop.example/login"
        assert data["response_field"] == "g-recaptcha-response"
        assert data["retry_message"] == "no" and data["prompt"] == request.prompt
        with pytest.raises(ValueError, match="empty"):
            broker.answer("shop", "''")
        token = "03AFcWeA" + "x" * 2000
        # As a console prints it, broken over lines by the terminal.
        broker.answer("shop", f"'{token[:900]}\n{token[900:]}'\n")
        assert await worker == token
        await asyncio.sleep(0.02)
        assert token[:900] not in json.dumps([e["data"] for e in bus.recent])
    finally:
        broker.cancel()
