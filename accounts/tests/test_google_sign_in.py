import pytest

# Backend-neutral (conftest.py): the sign-in page's Google button and redirect.
pytestmark = [pytest.mark.django_db, pytest.mark.backend_neutral]

GOOGLE = {
    "google": {
        "APPS": [{"client_id": "test-client-id", "secret": "test-secret", "key": ""}],
        "SCOPE": ["profile", "email"],
    }
}


def test_it_offers_google_sign_in_when_configured(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = GOOGLE
    page = client.get("/accounts/login/").content.decode()
    assert "/accounts/google/login/" in page


def test_it_offers_no_google_sign_in_by_default(client):
    page = client.get("/accounts/login/").content.decode()
    assert "/accounts/google/login/" not in page


def test_it_sends_the_user_to_google_with_the_configured_client_id(client, settings):
    # Google itself lies outside the system: we only check the redirect we send.
    settings.SOCIALACCOUNT_PROVIDERS = GOOGLE
    response = client.post("/accounts/google/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://accounts.google.com/o/oauth2/")
    assert "client_id=test-client-id" in response["Location"]


def test_it_answers_google_urls_with_404_while_google_is_not_configured(client):
    for url in ("/accounts/google/login/", "/accounts/google/login/callback/"):
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
