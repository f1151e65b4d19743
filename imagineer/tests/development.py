"""A pytest plugin loaded before Django's settings (`-p imagineer.tests.development` in
pyproject.toml): the test suite runs in development mode, as `make run` does.

Debug is off unless DJANGO_DEBUG says otherwise (settings.py), and pytest-django imports
the settings before any conftest.py is read, so the variable is set here, on import. Child
processes (manage.py commands, qcluster workers) inherit it; the tests of production
settings pass DJANGO_DEBUG=0 to theirs.
"""

import os

if not os.environ.get("DJANGO_DEBUG"):
    os.environ["DJANGO_DEBUG"] = "1"
