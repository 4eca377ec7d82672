"""What the login tests of tests/connectors/form/ share: a connector on the runner's own browser,
talking to a portal served on loopback, with a person who answers codes and approvals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from connectors.base import ApprovalRequest, PortalContext
from connectors.form.connector import FormConnector
from gmid.errors import ChallengeExpired
from gmid.portals.web import HttpPolicy, make_browser, read_body
from tests.conftest import ROOT
from tests.support.portal_http import Request

USER = "anna@example.org"
PASSWORD = 'pa"ss\\wört {x} </script>'  # JSON needs escaping; a format would choke on {x}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def html(body: str, headers: list[tuple[str, str]] | None = None, status: int = 200):
    return (
        status,
        [("Content-Type", "text/html; charset=utf-8"), *(headers or [])],
        f"<!doctype html><html><head></head><body>{body}</body></html>",
    )


def as_json(data, status: int = 200, headers: list[tuple[str, str]] | None = None):
    return status, [("Content-Type", "application/json"), *(headers or [])], json.dumps(data)


def pdf(request: Request):
    return 200, {"Content-Type": "application/pdf"}, PDF + request.path.encode()


@dataclass
class Harness:
    url: str
    requests: list[Request]
    pages: Path
    saved: list[Path] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)
    asked: list = field(default_factory=list)
    approvals: list[ApprovalRequest] = field(default_factory=list)
    polls: int = 0

    def connector(
        self,
        description: str,
        *,
        username: str = USER,
        password: str = PASSWORD,
        codes: list[str] | None = None,
        max_polls: int = 5,
        secrets: dict[str, str] | None = None,
        known: Callable[[str], bool] = lambda ref: False,
    ) -> FormConnector:
        def save_page(name: str, body: bytes) -> Path:
            path = self.pages / f"{name}-{len(self.saved)}.html"
            path.write_bytes(body)
            self.saved.append(path)
            return path

        ctx = PortalContext(
            portal="shop",
            username=username,
            password=lambda: password,
            browser=make_browser(HttpPolicy(timeout=10)),
            ask=self._answer(codes),
            wait_approval=self._wait(max_polls),
            save_page=save_page,
            read_body=read_body,
            options=yaml.safe_load(description.replace("URL", self.url)),
            learn_secret=self.learned.append,
            secret=(secrets or {}).__getitem__,
            known=known,
        )
        return FormConnector(ctx)

    def _answer(self, codes: list[str] | None):
        def ask(request):
            if codes is None:
                pytest.fail(f"nothing should be asked: {request}")
            self.asked.append(request)
            return codes[len(self.asked) - 1]

        return ask

    def _wait(self, max_polls: int) -> Callable[[ApprovalRequest, Callable[[], bool]], None]:
        """The broker's loop, without its 3 seconds between polls."""

        def wait(request: ApprovalRequest, poll: Callable[[], bool]) -> None:
            self.approvals.append(request)
            for _ in range(max_polls):
                self.polls += 1
                if poll():
                    return
            raise ChallengeExpired("nobody approved the login")

        return wait

    def of(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]


def ids(connector: FormConnector) -> list[str]:
    return [doc.id for doc in connector.documents()]


def fetch(d, portal: str = "shop") -> subprocess.CompletedProcess:
    """`gmid fetch PORTAL --wait` against a running daemon."""
    return subprocess.run(
        [sys.executable, "-m", "gmid", "fetch", "--socket", str(d.socket), portal, "--wait"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def everything_shown(d, *outputs: str) -> str:
    """What the commands printed, the daemon's log and every file of its state; the daemon's
    folder is removed."""
    files = (p.read_text(errors="replace") for p in d.state.rglob("*") if p.is_file())
    seen = "".join(outputs) + d.log_text() + "".join(files)
    shutil.rmtree(d.dir, ignore_errors=True)
    return seen
