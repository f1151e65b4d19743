"""Sign-in throttling (django-axes): per account, per address, the cool-off, the lockout
page and its log line, on the sign-in page, the admin and the API's password check."""

from datetime import timedelta

import pytest
from axes.models import AccessFailureLog
from django.utils import timezone

from conftest import PASSWORD

pytestmark = pytest.mark.django_db

WRONG = "not-the-password-1"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Every attempt checks a password; these tests make a dozen of them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def limit(settings):
    return settings.AXES_FAILURE_LIMIT


@pytest.fixture
def clock(monkeypatch):
    """The clock, moved forward on demand: django.utils.timezone.now, and the copy of it
    that django-axes imported to stamp each attempt."""
    real_now = timezone.now
    offset = timedelta()

    def now():
        return real_now() + offset

    def advance(**delta):
        nonlocal offset
        offset += timedelta(**delta)

    monkeypatch.setattr("django.utils.timezone.now", now)
    monkeypatch.setattr("axes.handlers.proxy.now", now)
    return advance


def sign_in(client, login, password, address="192.0.2.1", **headers):
    return client.post("/accounts/login/", {"login": login, "password": password},
                       REMOTE_ADDR=address, **headers)


def admin_sign_in(client, username, password, address="192.0.2.1"):
    return client.post("/admin/login/?next=/admin/",
                       {"username": username, "password": password}, REMOTE_ADDR=address)


def api_token(client, username, password, address):
    """POST /api/token/, the API's password check."""
    return client.post("/api/token/", {"username": username, "password": password},
                       content_type="application/json", REMOTE_ADDR=address)


def signed_in(response):
    return response.status_code == 302 and response.wsgi_request.user.is_authenticated


def test_it_locks_an_account_whatever_address_tries_it(client, viewer, limit):
    for n in range(limit):
        response = sign_in(client, viewer.email, WRONG, address=f"198.51.100.{n}")
    assert response.status_code == 429  # the last failure locks
    response = sign_in(client, viewer.email, PASSWORD, address="203.0.113.9")
    assert response.status_code == 429
    assert not response.wsgi_request.user.is_authenticated
    # The admin names the account by its username: the same account, the same lock.
    assert admin_sign_in(client, viewer.username, PASSWORD, "203.0.113.10").status_code == 429


def test_it_locks_an_address_whatever_account_it_tries(client, viewer, make_user, limit):
    for n in range(limit):
        sign_in(client, f"guess{n}@example.com", WRONG, address="198.51.100.7")
    response = sign_in(client, viewer.email, PASSWORD, address="198.51.100.7")
    assert response.status_code == 429
    assert signed_in(sign_in(client, viewer.email, PASSWORD, address="198.51.100.8"))


def test_it_counts_failures_from_every_form_that_checks_a_password(client, viewer, limit):
    for n in range(limit - 1):
        admin_sign_in(client, viewer.username, WRONG, address=f"198.51.100.{n}")
    assert api_token(client, viewer.username, WRONG, "198.51.100.99").status_code == 401
    assert sign_in(client, viewer.email, PASSWORD, address="203.0.113.9").status_code == 429


def test_it_refuses_the_api_password_check_while_locked_out(client, viewer, limit):
    for n in range(limit):
        sign_in(client, viewer.email, WRONG, address=f"198.51.100.{n}")
    response = api_token(client, viewer.username, PASSWORD, "203.0.113.9")
    assert response.status_code == 401
    assert "token" not in response.json()


def test_it_lets_the_account_in_again_after_the_cool_off(client, viewer, limit, clock,
                                                         settings):
    for _ in range(limit):
        sign_in(client, viewer.email, WRONG)
    clock(minutes=14)
    assert sign_in(client, viewer.email, PASSWORD).status_code == 429
    clock(seconds=settings.AXES_COOLOFF_TIME.total_seconds() - 14 * 60 + 1)
    assert signed_in(sign_in(client, viewer.email, PASSWORD))


def test_it_shows_a_page_that_says_why_and_for_how_long(client, viewer, limit):
    for _ in range(limit):
        response = sign_in(client, viewer.email, WRONG)
    assert response.status_code == 429
    assert "accounts/locked_out.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "<h1>Sign-in paused</h1>" in page
    assert f"after {limit} wrong passwords" in page
    assert "Try again in 15 minutes" in page
    assert "Traceback" not in page
    admin = admin_sign_in(client, viewer.username, PASSWORD)
    assert admin.status_code == 429 and "Sign-in paused" in admin.content.decode()


def test_it_logs_the_lockout_to_the_security_log(client, viewer, limit, caplog):
    with caplog.at_level("WARNING", logger="security"):
        for _ in range(limit):
            sign_in(client, viewer.email, WRONG, address="198.51.100.3")
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "sign_in_locked_out"]
    assert record.name == "security"
    assert (record.account, record.address) == (viewer.username, "198.51.100.3")
    assert WRONG not in caplog.text


def test_it_keeps_every_failed_sign_in_in_the_audit_trail(client, viewer, admin_user):
    sign_in(client, viewer.email, WRONG, address="198.51.100.4")
    failure = AccessFailureLog.objects.get()
    assert (failure.username, failure.ip_address) == (viewer.username, "198.51.100.4")
    assert failure.path_info == "/accounts/login/"
    client.force_login(admin_user)
    page = client.get("/admin/axes/accessfailurelog/").content.decode()
    assert "198.51.100.4" in page


def test_it_ignores_x_forwarded_for_without_a_configured_proxy(client, viewer, limit):
    for n in range(limit):
        sign_in(client, f"guess{n}@example.com", WRONG, address="198.51.100.7",
                HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    response = sign_in(client, viewer.email, PASSWORD, address="198.51.100.7",
                       HTTP_X_FORWARDED_FOR="203.0.113.200")
    assert response.status_code == 429


def test_it_takes_the_client_address_from_the_configured_proxy(client, viewer, limit,
                                                               settings):
    settings.IMAGINEER_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for n in range(limit):  # what the client sends itself stays to the left
        sign_in(client, f"guess{n}@example.com", WRONG, address=proxy,
                HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
    locked = sign_in(client, viewer.email, PASSWORD, address=proxy,
                     HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert locked.status_code == 429
    assert signed_in(sign_in(client, viewer.email, PASSWORD, address=proxy,
                             HTTP_X_FORWARDED_FOR="203.0.113.8"))
