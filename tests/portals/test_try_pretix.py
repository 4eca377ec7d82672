"""`gmid try` on a real portal: pretix (installed from PyPI, served on loopback), with the
description of docs/form-connector.md: its real login with its CSRF token, its order list, each
order's page with its invoice, and one real PDF downloaded beside the archive, not into it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from gmid.control.trytext import report_lines
from gmid.portals import tryout
from tests.portals.test_pretix import DESCRIPTION, RUNNER_CONFIG, pretix  # noqa: F401
from tests.support.pretix import Pretix
from tests.support.runner import started_runner

pytestmark = pytest.mark.timeout(1200)  # the first session on a machine installs pretix


async def test_pretix_tried_step_by_step_with_one_download(pretix: Pretix, tmp_path: Path):  # noqa: F811
    data = pretix.data
    options = yaml.safe_load(
        DESCRIPTION.format(url=pretix.organizer_url, organizer=data["organizer"])
    )
    path = tmp_path / "config.yaml"
    config_text = RUNNER_CONFIG.format(
        tmp=tmp_path, user=data["email"], password=data["password"], form=json.dumps(options)
    )
    path.write_text(config_text)
    into = tmp_path / "tried"
    async with started_runner(path) as (runner, config, index):
        report = await asyncio.to_thread(
            tryout.try_portal,
            runner.portal("pretix"),
            config,
            runner.archive,
            index,
            runner.broker,
            runner.events,
            runner.halt,
            download=1,
            into=into,
        )
        filed = index.count()
    text = "\n".join(report_lines(report))
    print(text)  # shown when the test fails
    assert report.outcome == "ok", text
    # pretix's login form found without a selector, its CSRF token sent along
    assert "login.form  a form with a password input: 1 match" in text
    assert "login.success  selector \"a[href*='/account/logout']\": 1 match" in text
    orders = data["orders"]
    assert f"documents.rows  article.row: {len(orders)} matches" in text
    assert "documents.detail.rows  li:has(> a[href*='/invoice/']): 1 match" in text
    assert sorted(row.number for row in report.rows) == sorted(o["invoice"] for o in orders)
    [saved] = into.iterdir()
    assert saved.read_bytes().startswith(b"%PDF")
    assert "application/pdf, " in text and f"saved as {saved}" in text
    assert filed == 0 and not list((tmp_path / "archive").rglob("*.pdf"))
    assert data["password"] not in text
