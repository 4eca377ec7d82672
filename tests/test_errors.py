"""One error hierarchy: gmid's own exceptions derive from GmidError, and keep their other bases."""

from __future__ import annotations

import pytest

from connectors.form.extract import MissingValue
from gmid.archive.statelock import StateLocked
from gmid.errors import ArchiveError, GmidError, IndexDbError
from gmid.mail.imap.sync import ImapCommandError
from gmid.mail.imap.watch import LoginRefused
from gmid.mail.imap.wire import WireError
from gmid.portals.cookiestxt import CookieFileError
from gmid.shell import CommandTimeout


@pytest.mark.parametrize(
    "error",
    [
        ImapCommandError,
        LoginRefused,
        WireError,
        CommandTimeout,
        StateLocked,
        MissingValue,
        IndexDbError,
    ],
)
def test_each_derives_from_gmid_error(error):
    assert issubclass(error, GmidError)


def test_the_other_bases_stay_for_the_except_clauses_that_name_them():
    assert issubclass(WireError, ValueError)
    assert issubclass(CookieFileError, ValueError)


def test_an_index_problem_is_not_an_archive_error():
    assert not issubclass(IndexDbError, ArchiveError)
