"""Helpers for tests that start real processes (manage.py commands, qcluster workers)."""

import os
import sys
from pathlib import Path

from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent


def database_url():
    """DATABASE_URL of the database the test run is using (the test database)."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    auth = settings["USER"] or ""
    if settings.get("PASSWORD"):
        auth += f":{settings['PASSWORD']}"
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{settings['NAME']}"


def subprocess_env(**extra):
    """The environment for a child process that must see the test database and media."""
    from django.conf import settings

    env = dict(os.environ)
    env["DATABASE_URL"] = database_url()
    env["IMAGINEER_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


def manage(*args, env=None, **kwargs):
    """Run a manage.py command in a child process."""
    import subprocess

    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env if env is not None else subprocess_env(),
        capture_output=True,
        text=True,
        **kwargs,
    )
