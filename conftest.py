"""Fixtures shared by every app's tests: users with roles, API clients, the browser."""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls made
# beside it from the test are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "a-long-test-password-42"  # noqa: S105 (the test users' password, a test database only)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_workers():
    from imagineer.testing import kill_leftover_workers

    kill_leftover_workers()
    yield
    kill_leftover_workers()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores files in its own media root (child processes get it too)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGINEER_MODEL_CACHE = tmp_path / "model-cache"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def model_roots(settings, tmp_path_factory):
    """Models built under pytest's temporary folders may be registered (they are outside
    IMAGINEER_MODEL_DIR; child processes get the setting too: subprocess_env)."""
    settings.IMAGINEER_MODEL_ROOTS = [*settings.IMAGINEER_MODEL_ROOTS,
                                      tmp_path_factory.getbasetemp()]
    return settings.IMAGINEER_MODEL_ROOTS


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    """Test users' passwords hashed with 1,000 PBKDF2 rounds (imagineer/testing.py)."""
    settings.PASSWORD_HASHERS = ["imagineer.testing.QuickPBKDF2PasswordHasher",
                                 *settings.PASSWORD_HASHERS]


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    from accounts.roles import set_role

    def make(username, role="viewer", **fields):
        user = get_user_model().objects.create_user(
            username=username, email=f"{username}@example.com", password=PASSWORD, **fields
        )
        set_role(user, role)
        user.refresh_from_db()
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("vera", "viewer")


@pytest.fixture
def other_viewer(make_user):
    return make_user("otto", "viewer")


@pytest.fixture
def editor(make_user):
    return make_user("edith", "editor")


@pytest.fixture
def admin_user(make_user):
    return make_user("ada", "admin")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_as(api_client):
    """An API client signed in with the given user's token."""
    from rest_framework.authtoken.models import Token

    def sign_in(user):
        token, _ = Token.objects.get_or_create(user=user)
        api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return api_client

    return sign_in


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Playwright (it cannot download its own here)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        pytest.fail("chromium is not installed: `make test` installs it with apt")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def sign_in_page(page, live_server):
    """Sign in through the real sign-in page and return the page."""

    def sign_in(user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=login]", user.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return sign_in


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start real django-q2 workers (`manage.py qcluster`) on the test database, with extra
    environment: `start_worker(IMAGINEER_CAPTION_MODEL=path)`. Stopped after the test.

    Tests that use it see only committed rows, hence transactional_db.
    """
    from imagineer.testing import WorkerProcess

    started = []

    def start(**env):
        process = WorkerProcess(tmp_path / f"qcluster-{len(started)}.log", **env).start()
        started.append(process)
        return process

    yield start
    for process in started:
        # Killed, not stopped: a graceful stop (SIGTERM) never ended within its 3 s grace in
        # a whole run, so each worker test paid 3 s for the kill that followed.
        process.kill()
        print(process.log()[-5000:])


@pytest.fixture
def worker(start_worker):
    """A real django-q2 worker on the test database, with the test run's environment."""
    return start_worker()


# Which tests run on PostgreSQL (docs/reliability.md, "Testing"). SQLite, the default, runs
# the whole suite. On another database `make test` (any pytest run) runs only the tests
# whose outcome can depend on the backend: those that use the database, less the modules
# marked backend_neutral (their database is only a place to keep fixtures: browser walks,
# schema and header checks). IMAGINEER_TEST_ALL=1 (`make test-all`) runs everything.
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server",
                     "django_db_reset_sequences", "django_db_serialized_rollback"}


def uses_database(item):
    return (item.get_closest_marker("django_db") is not None
            or not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.sqlite3" or os.environ.get("IMAGINEER_TEST_ALL") == "1":
        return
    no_database = [item for item in items if not uses_database(item)]
    neutral = [item for item in items
               if uses_database(item) and item.get_closest_marker("backend_neutral")]
    if not no_database and not neutral:
        return
    skipped = {id(item) for item in no_database + neutral}
    items[:] = [item for item in items if id(item) not in skipped]
    config.hook.pytest_deselected(items=no_database + neutral)
    # The coverage threshold (pyproject.toml) is the whole suite's: the SQLite run checks it.
    coverage = config.pluginmanager.get_plugin("_cov")
    if coverage is not None and getattr(coverage, "options", None) is not None:
        coverage.options.cov_fail_under = None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"{engine.rsplit('.', 1)[-1]}: running the {len(items)} tests that can depend on "
            f"the database backend; deselected {len(no_database)} that use no database and "
            f"{len(neutral)} marked backend_neutral, and no coverage threshold (the SQLite "
            "run, which runs them all, checks it; IMAGINEER_TEST_ALL=1 runs everything here)")
