"""The declarative form connector: a portal described in YAML (docs/form-connector.md).

`connector` runs the description; `spec` reads it, `values` checks its plain values, `extract`
reads pages and `widgets` finds captcha widgets in them; `loginspec` reads and `login` runs the
logins beyond one form (in steps, through a JSON API, none) and the request headers, with
`requestspec` for the requests before an API login; `oauthspec` and `oauth` the OAuth2 logins
on an identity provider; `approval` the wait for a login approved in the portal's app. JSON
lists have `jsonspec` (their part of the description) and `jsonlist` (reading their answers).
"""

from connectors.form.connector import FormConnector

__all__ = ["FormConnector"]
