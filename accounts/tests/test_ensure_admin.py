import pytest
from django.contrib.auth import get_user_model

from imagineer.testing import manage, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_creates_an_admin_once_and_prints_the_password_once():
    first = manage("ensure_admin")
    assert first.returncode == 0, first.stderr
    assert "password:" in first.stdout
    admin = get_user_model().objects.get(email="admin@example.com")
    assert admin.role == "admin" and admin.is_staff
    second = manage("ensure_admin")
    assert "exists already" in second.stdout
    assert "password:" not in second.stdout


def test_it_takes_the_admin_credentials_from_the_environment(client):
    env = subprocess_env(IMAGINEER_ADMIN_EMAIL="boss@example.com",
                         IMAGINEER_ADMIN_PASSWORD="from-the-env-123")  # noqa: S106 (a test's password)
    result = manage("ensure_admin", env=env)
    assert result.returncode == 0, result.stderr
    assert "from-the-env-123" not in result.stdout
    # Its username says nothing of the address: pages show it to other users.
    assert get_user_model().objects.get(email="boss@example.com").username == "admin"
    response = client.post("/accounts/login/",
                           {"login": "boss@example.com", "password": "from-the-env-123"})
    assert response.status_code == 302
