#!/usr/bin/env bash
# paperless-ngx for the tests of the paperless destination (tests/support/paperless.py): its
# Python packages into a venv in ~/.cache/gmid-tests/paperless and its migrated template
# database, once per machine (about a minute and a half; quick when already done). The Debian
# programs it runs (redis-server, ghostscript, poppler-utils, imagemagick, libmagic1) are
# installed by scripts/test with the other servers' packages.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || scripts/setup test
exec .venv/bin/python -m tests.support.paperless install
