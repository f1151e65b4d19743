import pytest
from rest_framework.authtoken.models import Token

from imagineer.testing import manage

pytestmark = pytest.mark.django_db

# The API root lists the router's endpoints and needs authentication.
URL = "/api/"


def test_it_accepts_a_valid_token(api_client, viewer):
    token = Token.objects.create(user=viewer)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api_client.get(URL).status_code == 200


def test_it_refuses_a_missing_token_with_json(api_client):
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "detail" in response.json()


def test_it_refuses_a_revoked_token(api_client, viewer, client):
    token = Token.objects.create(user=viewer)
    client.force_login(viewer)
    client.post("/account/token/", {"action": "revoke"})
    assert not Token.objects.filter(key=token.key).exists()
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api_client.get(URL)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_it_creates_and_replaces_a_token_from_the_token_page(client, viewer):
    client.force_login(viewer)
    assert "You have no token" in client.get("/account/token/").content.decode()
    client.post("/account/token/", {"action": "create"})
    first = Token.objects.get(user=viewer).key
    assert first in client.get("/account/token/").content.decode()
    client.post("/account/token/", {"action": "create"})
    assert Token.objects.get(user=viewer).key != first


def test_it_makes_a_token_with_drf_create_token(viewer, transactional_db):
    result = manage("drf_create_token", viewer.username)
    assert result.returncode == 0, result.stderr
    key = Token.objects.get(user=viewer).key
    assert key in result.stdout


def test_it_logs_failed_sign_ins_without_the_password(client, viewer, caplog):
    with caplog.at_level("WARNING", logger="security"):
        client.post("/accounts/login/", {"login": viewer.email, "password": "wrong-secret-xyz"})
    records = [r for r in caplog.records if getattr(r, "event", "") == "sign_in_failed"]
    assert records, "a failed sign-in must be logged"
    assert records[0].account == viewer.email
    assert "wrong-secret-xyz" not in caplog.text
