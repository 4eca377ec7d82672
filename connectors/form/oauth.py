"""The OAuth2 login of a form description (`login.type: oauth2`, read by oauthspec.py).

The identity provider's pages are HTML forms, filled as a `type: form` login's are (one form
or `steps`, captchas, the `code:` step): this mixin of the form connector only builds the
authorization address, catches the provider's redirect back to `redirect_uri` (without
following it: it may lead to an app, or to a page that would spend the code), checks its
`state`, and trades the code for a token, sent from then on as the login's header.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import requests

from connectors.form import extract as x
from connectors.form.login import OtherLogins
from gmid.errors import PortalError, WrongCredentials

if TYPE_CHECKING:
    from connectors.form.oauthspec import OAuthSpec

logger = logging.getLogger(__name__)

MAX_HOPS = 10  # redirects between the provider's pages before the one back to the portal


class Arrived(Exception):
    """The provider redirected to `redirect_uri`; raised from a response hook to stop there."""

    def __init__(self, url: str):
        super().__init__("redirected back")
        self.url = url


class OAuthLogin(OtherLogins):
    """The form connector's OAuth2 authorization-code login (a mixin of FormConnector)."""

    def _oauth_login(self) -> None:
        """Log in on the provider's pages, take the code from its redirect, trade it."""
        oauth = self.spec.login.oauth
        assert oauth is not None
        self.headers.set(oauth.token.header, None)  # a new login starts without the old token
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        hook = _catch(oauth.redirect_uri, self.browser.session.cookies)
        hooks = self.browser.session.hooks["response"]
        hooks.append(hook)
        try:
            self._open(_authorization(oauth, state, verifier))
            self._provider_login()  # not back yet: the provider shows its login form
        except Arrived as back:
            code = self._code_of(back.url, state)
        else:
            raise self._changed(
                "login.redirect_uri: after the login the provider did not send back to "
                f"{x.public_url(oauth.redirect_uri)}",
                selector=self.spec.login.form,
            )
        finally:
            hooks.remove(hook)
        token = self._trade(oauth, code, verifier)
        self.headers.set(oauth.token.header, oauth.token.format.format_map({"token": token}))
        logger.info("%s: logged in through %s", self.ctx.portal, x.public_url(oauth.authorize))

    def _provider_login(self) -> None:
        """Fill the provider's login form (or pages), then its code page if it shows one."""
        if self.spec.login.steps:
            self._step_login()
        else:
            self._submit_login()
        code, approval = self.spec.code, self.spec.approval
        if code is not None and self._shows(code.when):
            self._code_step()
        if approval is not None and self._shows(approval.when):
            self._approval_step()

    def _code_of(self, url: str, state: str) -> str:
        """The code of the redirect back (in its query, or its fragment), its state checked."""
        parts = urlsplit(url)
        found = {**parse_qs(parts.fragment), **parse_qs(parts.query)}
        got = {name: values[0] for name, values in found.items() if values}
        if got.get("code"):
            self.ctx.learn_secret(got["code"])
        if "error" in got:
            words = got.get("error_description") or got["error"]
            if got["error"] == "access_denied":
                raise WrongCredentials(
                    f"{self.ctx.portal}: the identity provider refused the login",
                    portal_message=words,
                )
            raise self._changed(f"login.authorize: the provider answered {words!r}")
        if got.get("state", state) != state:
            raise PortalError(f"{self.ctx.portal}: the provider sent back another login's state")
        if not got.get("code"):
            raise self._changed("login.redirect_uri: the provider sent back without a code")
        return got["code"]

    def _trade(self, oauth: OAuthSpec, code: str, verifier: str) -> str:
        """POST the code to `token_url`; the token of the answer, known as a secret."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": oauth.redirect_uri,
            "client_id": oauth.client_id,
        }
        if oauth.pkce:
            data["code_verifier"] = verifier
        accept = {"Accept": "application/json"}
        response = self.browser.session.post(oauth.token_url, data=data, headers=accept)
        self._response = response
        answer = _answer(response)
        if isinstance(answer, dict):  # secrets even when `token` looks elsewhere: a saved
            for key in ("access_token", "refresh_token", "id_token"):  # answer shows none
                if isinstance(answer.get(key), str) and answer[key]:
                    self.ctx.learn_secret(answer[key])
        token = self._found_token(oauth, answer, response)
        if not token:
            status, words = response.status_code, _words(answer)
            said = f": {words!r}" if words else ""
            what = f"login.token_url: HTTP {status}, no token in the answer{said}"
            if status < 400 and oauth.token.path is not None:
                path = oauth.token.path.expression
                what = f"login.token.path: {path!r} found nothing in the token answer"
            raise self._changed(what, url=oauth.token_url)
        return token

    def _found_token(self, oauth: OAuthSpec, answer: Any, response: requests.Response) -> str:
        spec = oauth.token
        if spec.path is not None and response.status_code < 400:
            found = spec.path.find(answer)
            token = str(found).strip() if isinstance(found, str | int) else ""
        elif spec.cookie is not None:
            token = self._cookie(spec.cookie) or ""
        else:
            token = ""
        if token:
            self.ctx.learn_secret(token)
        return token


def _authorization(oauth: OAuthSpec, state: str, verifier: str) -> str:
    """The authorization address: the given one, with the flow's parameters added."""
    params = {
        **dict(oauth.params),
        "client_id": oauth.client_id,
        "response_type": "code",
        "redirect_uri": oauth.redirect_uri,
        "state": state,
    }
    if oauth.scope:
        params["scope"] = oauth.scope
    if oauth.pkce:
        digest = hashlib.sha256(verifier.encode()).digest()
        params["code_challenge"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        params["code_challenge_method"] = "S256"
    parts = urlsplit(oauth.authorize)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def _catch(redirect_uri: str, jar: requests.cookies.RequestsCookieJar):
    """A response hook that stops at a redirect to `redirect_uri` (compared without query),
    keeping its cookies first (requests would take them only after the hooks): a provider
    remembers the browser by the cookie it sets there."""
    target = urlsplit(redirect_uri)

    def hook(response: requests.Response, **kwargs: Any) -> requests.Response:
        if not response.is_redirect:
            return response
        location = urljoin(response.url, response.headers.get("Location", ""))
        there = urlsplit(location)
        same = (there.scheme, there.netloc.lower(), there.path or "/") == (
            target.scheme,
            target.netloc.lower(),
            target.path or "/",
        )
        if same:
            requests.cookies.extract_cookies_to_jar(jar, response.request, response.raw)
            response.close()
            raise Arrived(location)
        return response

    return hook


def _answer(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _words(answer: Any) -> str | None:
    """The token endpoint's own words: OAuth2's error_description, else its error."""
    if not isinstance(answer, dict):
        return None
    words = answer.get("error_description") or answer.get("error")
    return " ".join(str(words).split())[:500] if words else None
