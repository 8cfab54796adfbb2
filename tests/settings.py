"""The project's settings as production has them, with the few changes tests need."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production")

from chatproject.settings import *  # noqa: F403

# Most tests speak as anonymous browser sessions; tests of login set it back on.
STREAMING_REQUIRE_LOGIN = False
# The fake upstream fails on purpose; a retry would only repeat the failure more slowly.
STREAMING_OPENAI_MAX_RETRIES = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# A connection kept open by the database thread would stop the test database from being dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# A busy test machine must not make streams send `busy` frames into tests that count frames; tests of it lower this.
STREAMING_BUSY_MS = 60_000
