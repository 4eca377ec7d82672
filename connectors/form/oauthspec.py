"""`login.type: oauth2`: a login on an identity provider's page, then a code for a token.

The OAuth2 "authorization code" flow, as single-page portals use it: gmid opens the identity
provider's authorization address (with the portal's `client_id` and `redirect_uri`, a random
`state`, and a PKCE challenge when `pkce: true`), fills its login form as a `type: form` login
does (`form`, `fields`, `static`, `steps`, `failure`, and the `code:` and `captcha:` steps),
catches the redirect back to `redirect_uri?code=...` without following it, and trades the code
for a token at `token_url`. The token is then sent as a header, as a JSON login's is. Run by
connectors/form/oauth.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.form import loginspec as ls
from connectors.form.values import Checker
from gmid.errors import quoted

KEYS = ("authorize", "token_url", "client_id", "redirect_uri", "scope", "pkce", "params", "token")
_MISSING = {
    "authorize": "missing: the identity provider's authorization address, e.g. "
    "https://login.example/oauth/authorize",
    "token_url": "missing: where the code is traded for a token, e.g. "
    "https://login.example/oauth/token",
    "client_id": "missing: the portal's client id (client_id= in the authorization address)",
    "redirect_uri": "missing: where the provider sends back (redirect_uri= in the "
    "authorization address)",
}
_OWN_PARAMS = {
    "client_id": "give it as login.client_id",
    "redirect_uri": "give it as login.redirect_uri",
    "scope": "give it as login.scope",
    "response_type": "gmid sets it (code)",
    "state": "gmid makes a new one for each login",
    "code_challenge": "gmid makes it, with pkce: true",
    "code_challenge_method": "gmid sets it (S256), with pkce: true",
}
DEFAULT_TOKEN = ls.TokenSpec(
    "Authorization", "Bearer {token}", ls.JsonPath("login.token.path", "access_token")
)


@dataclass(frozen=True)
class OAuthSpec:
    """Where the authorization and the token requests go, and what they carry."""

    authorize: str
    token_url: str
    client_id: str
    redirect_uri: str
    scope: str | None = None
    pkce: bool = False
    params: tuple[tuple[str, str], ...] = ()  # more query parameters of the authorization
    token: ls.TokenSpec = DEFAULT_TOKEN


def read_oauth(c: Checker, m: Mapping[str, Any]) -> OAuthSpec | None:
    """Read the OAuth2 options of a `login:` of `type: oauth2` (its keys already checked)."""
    for key in _MISSING:
        if key not in m:
            c.problem(f"login.{key}", _MISSING[key])
    authorize = c.url(m.get("authorize"), "login.authorize")
    token_url = c.url(m.get("token_url"), "login.token_url")
    client_id = c.text(m.get("client_id"), "login.client_id")
    redirect = c.text(m.get("redirect_uri"), "login.redirect_uri")
    if redirect is not None and not (urlsplit(redirect).scheme and urlsplit(redirect).netloc):
        c.problem(
            "login.redirect_uri",
            f"expected an absolute address (https://...), got {quoted(redirect)}",
        )
        redirect = None
    pkce = m.get("pkce", False)
    if not isinstance(pkce, bool):
        c.problem("login.pkce", f"expected true or false, got {quoted(pkce)}")
        pkce = False
    params = c.pairs(m.get("params"), "login.params")
    for name, _ in params:
        if name in _OWN_PARAMS:
            c.problem(f"login.params.{name}", _OWN_PARAMS[name])
    token = ls.read_token(c, m["token"], "Bearer {token}") if "token" in m else DEFAULT_TOKEN
    if None in (authorize, token_url, client_id, redirect) or token is None:
        return None
    return OAuthSpec(
        authorize=authorize,
        token_url=token_url,
        client_id=client_id,
        redirect_uri=redirect,
        scope=c.text(m.get("scope"), "login.scope"),
        pkce=pkce,
        params=params,
        token=token,
    )
