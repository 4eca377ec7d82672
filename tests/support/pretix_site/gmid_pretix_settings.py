"""pretix's own settings for the tests, less mail: pretix (run with the interpreter of its own
venv, DJANGO_SETTINGS_MODULE=gmid_pretix_settings) writes mails into files instead of sending
them to localhost:25, which its config file cannot change."""

import os

from pretix.settings import *  # noqa: F403
from pretix.settings import DATA_DIR

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_CUSTOM_SMTP_BACKEND = EMAIL_BACKEND
EMAIL_FILE_PATH = os.path.join(DATA_DIR, "mail")
