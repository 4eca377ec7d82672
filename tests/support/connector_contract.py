"""The contract every connector keeps, checked against a portal served on loopback.

A connector's test module subclasses ConnectorContract and provides the `contract_portal`
fixture, as vdirsyncer's storage tests do with `get_storage_args`:

    class TestShopContract(ConnectorContract):
        @pytest.fixture
        def contract_portal(self):
            with serve(shop) as portal:
                yield ContractPortal(connect=lambda password=None, browser=None: ...,
                                     wrong_password="nope")

`connect` returns a connector bound to the running portal: a fresh browser unless one is
given (to reuse its cookies), the right password unless another is given, and a context whose
`ask` answers the portal's codes and captchas, if it asks any.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import mechanicalsoup
import pytest

from connectors.base import Connector, RemoteDocument
from gmid.errors import WrongCredentials


@dataclass
class ContractPortal:
    """What the contract needs from a connector's tests: connectors bound to a live portal."""

    connect: Callable[..., Connector]
    """connect(password: str | None = None, browser: StatefulBrowser | None = None)."""
    wrong_password: str


class ConnectorContract:
    """Behaviour the runner relies on, whatever the portal."""

    @pytest.fixture
    def contract_portal(self) -> ContractPortal:
        raise NotImplementedError("a connector's test class provides this fixture")

    def test_its_options_are_valid(self, contract_portal: ContractPortal):
        connector = contract_portal.connect()
        assert type(connector).check_options(connector.ctx.options) == []

    def test_login_then_documents_with_unique_ids_and_absolute_urls(
        self, contract_portal: ContractPortal
    ):
        connector = contract_portal.connect()
        connector.login()
        docs = list(connector.documents())
        assert docs, "the contract portal lists at least one document"
        assert all(isinstance(doc, RemoteDocument) for doc in docs)
        ids = [doc.id for doc in docs]
        assert all(isinstance(i, str) and i for i in ids)
        assert len(set(ids)) == len(ids), ids
        for doc in docs:
            parts = urlsplit(doc.url)
            assert parts.scheme in ("http", "https") and parts.netloc, doc.url

    def test_download_returns_bytes(self, contract_portal: ContractPortal):
        connector = contract_portal.connect()
        connector.login()
        doc = next(iter(connector.documents()))
        data, content_type = connector.download(doc)
        assert isinstance(data, bytes) and data
        assert content_type is None or isinstance(content_type, str)

    def test_wrong_password_is_wrong_credentials(self, contract_portal: ContractPortal):
        connector = contract_portal.connect(password=contract_portal.wrong_password)
        with pytest.raises(WrongCredentials):
            connector.login()

    def test_a_fresh_browser_has_no_valid_session(self, contract_portal: ContractPortal):
        assert contract_portal.connect().session_valid() is False

    def test_a_logged_in_browser_is_reused(self, contract_portal: ContractPortal):
        first = contract_portal.connect()
        first.login()
        browser: mechanicalsoup.StatefulBrowser = first.ctx.browser
        second = contract_portal.connect(browser=browser)
        assert second.session_valid() is True
        assert list(second.documents())  # without logging in again
