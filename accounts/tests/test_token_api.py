"""POST /api/token/: a username (or email) and password for the user's API token."""

import pytest
from rest_framework.authtoken.models import Token

from accounts.api import BAD_CREDENTIALS, UNVERIFIED
from conftest import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/token/"


def test_it_gives_a_token_for_the_username_and_password_that_then_works(api_client, viewer):
    response = api_client.post(URL, {"username": viewer.username, "password": PASSWORD},
                               format="json")
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=viewer).key == key
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api_client.get("/api/jobs/").status_code == 200


def test_it_accepts_the_email_address_and_a_form_post(client, viewer):
    response = client.post(URL, {"username": viewer.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=viewer).key}


def test_it_gives_the_same_token_until_it_is_replaced(api_client, viewer):
    existing = Token.objects.create(user=viewer)
    response = api_client.post(URL, {"username": viewer.username, "password": PASSWORD},
                               format="json")
    assert response.json() == {"token": existing.key}
    assert Token.objects.filter(user=viewer).count() == 1


def test_it_refuses_a_wrong_password_with_a_clear_401_and_no_token(api_client, viewer):
    response = api_client.post(URL, {"username": viewer.email, "password": "not-it"},
                               format="json")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": BAD_CREDENTIALS}
    assert not Token.objects.exists()


def test_it_refuses_an_unknown_user_and_an_inactive_one_alike(api_client, viewer):
    viewer.is_active = False
    viewer.save()
    for username in (viewer.username, "nobody"):
        response = api_client.post(URL, {"username": username, "password": PASSWORD},
                                   format="json")
        assert response.status_code == 401
        assert response.json() == {"detail": BAD_CREDENTIALS}


def test_it_names_the_missing_and_the_unknown_fields(api_client):
    response = api_client.post(URL, {"user": "vera"}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors["user"][0].startswith("Unknown field. Allowed: password, username.")
    assert set(errors) == {"user"}
    response = api_client.post(URL, {}, format="json")
    assert response.json() == {"username": ["This field is required."],
                               "password": ["This field is required."]}


def test_it_ignores_a_stale_token_header(api_client, viewer):
    api_client.credentials(HTTP_AUTHORIZATION="Token revoked-long-ago")
    response = api_client.post(URL, {"username": viewer.username, "password": PASSWORD},
                               format="json")
    assert response.status_code == 200


def test_it_signs_in_through_authenticate_with_the_request(api_client, viewer, caplog):
    # authenticate(request=...) sends user_login_failed with the request: the failed
    # sign-in is logged with the caller's address, as throttling backends see it too.
    with caplog.at_level("INFO", logger="security"):
        api_client.post(URL, {"username": viewer.email, "password": "wrong-secret-xyz"},
                        format="json", REMOTE_ADDR="203.0.113.9")
        api_client.post(URL, {"username": viewer.email, "password": PASSWORD}, format="json",
                        REMOTE_ADDR="203.0.113.9")
    failed = [r for r in caplog.records if getattr(r, "event", "") == "sign_in_failed"]
    assert [(r.account, r.address) for r in failed] == [(viewer.email, "203.0.113.9")]
    issued = [r for r in caplog.records if getattr(r, "event", "") == "api_token"]
    assert [(r.user_id, r.address) for r in issued] == [(viewer.pk, "203.0.113.9")]
    assert "wrong-secret-xyz" not in caplog.text


def test_it_refuses_an_unverified_email_address_when_verification_is_mandatory(
        api_client, viewer, settings):
    # Anyone may sign up with somebody else's address: it proves nothing until verified.
    from allauth.account.models import EmailAddress

    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    address = EmailAddress.objects.create(user=viewer, email=viewer.email, primary=True,
                                          verified=False)
    credentials = {"username": viewer.email, "password": PASSWORD}
    response = api_client.post(URL, credentials, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": [UNVERIFIED]}
    assert not Token.objects.exists()

    address.verified = True
    address.save()
    assert api_client.post(URL, credentials, format="json").status_code == 200
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"  # then a password is enough, as before
    EmailAddress.objects.all().delete()
    assert api_client.post(URL, credentials, format="json").status_code == 200
