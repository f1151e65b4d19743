"""Who may sign up (IMAGINEER_SIGNUP: open, invite, closed; accounts/adapters.py), the
invites admins send from the API and the admin, and the usernames new accounts get."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invite
from accounts.roles import VIEWER
from imagineer.testing import manage, subprocess_env

pytestmark = pytest.mark.django_db

User = get_user_model()
PASSWORD = "a-long-pw-9876"  # noqa: S105 (a test account's password)


def sign_up(client, email, username=""):
    return client.post("/accounts/signup/", {"email": email, "username": username,
                                             "password1": PASSWORD, "password2": PASSWORD})


def invite(api_as, admin_user, email="new@example.com"):
    response = api_as(admin_user).post("/api/invites/", {"email": email}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def link_path(link):
    return re.sub(r"^https?://[^/]+", "", link)


@pytest.fixture
def policy(settings):
    def set_policy(value):
        settings.IMAGINEER_SIGNUP = value

    return set_policy


def test_sign_up_is_by_invitation_by_default_and_closed_without_one(client, settings):
    assert settings.IMAGINEER_SIGNUP == "invite"
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    assert 'name="password1"' not in page.content.decode()  # allauth's "sign-up closed"
    assert "Sign up" not in client.get("/accounts/login/").content.decode()
    sign_up(client, "walk-in@example.com")
    assert not User.objects.filter(email="walk-in@example.com").exists()


def test_an_invited_person_signs_up_with_the_invited_address_once(client, api_as,
                                                                 admin_user):
    sent = invite(api_as, admin_user)
    assert sent["status"] == "pending" and sent["invited_by"] == admin_user.username
    (email,) = mail.outbox
    assert email.to == ["new@example.com"] and sent["link"] in email.body

    accepted = client.get(link_path(sent["link"]))
    assert accepted.status_code == 302 and accepted["Location"] == reverse("account_signup")
    assert 'name="password1"' in client.get("/accounts/signup/").content.decode()
    refused = sign_up(client, "someone-else@example.com")
    assert refused.status_code == 200
    assert "This invitation is for new@example.com" in refused.content.decode()
    assert not User.objects.filter(email="someone-else@example.com").exists()

    assert sign_up(client, "new@example.com").status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.role == VIEWER
    # The link proved the address: verified without another email.
    assert EmailAddress.objects.get(user=user).verified
    invite_row = Invite.objects.get()
    assert (invite_row.status, invite_row.accepted_by) == ("accepted", user)

    client.logout()
    assert client.get(link_path(sent["link"])).status_code == 404  # used up
    sign_up(client, "again@example.com")
    assert not User.objects.filter(email="again@example.com").exists()


def test_an_expired_or_unknown_link_opens_nothing(client, api_as, admin_user, settings):
    sent = invite(api_as, admin_user)
    assert Invite.objects.get().expires_at == pytest.approx(
        timezone.now() + timedelta(days=settings.IMAGINEER_INVITE_DAYS),
        abs=timedelta(minutes=1))
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(link_path(sent["link"]))
    assert response.status_code == 404
    assert "This invitation cannot be used" in response.content.decode()
    assert client.get("/accounts/invite/not-a-key/").status_code == 404
    sign_up(client, "new@example.com")
    assert not User.objects.filter(email="new@example.com").exists()


def test_only_the_hash_of_the_key_is_kept(api_as, admin_user):
    sent = invite(api_as, admin_user)
    key = link_path(sent["link"]).rstrip("/").rsplit("/", 1)[1]
    row = Invite.objects.get()
    assert key not in row.key_hash and len(row.key_hash) == 64
    assert "link" not in api_as(admin_user).get(f"/api/invites/{row.pk}/").json()


def test_only_admins_invite_and_an_address_with_an_account_is_refused(api_as, viewer,
                                                                     editor, admin_user):
    for user in (viewer, editor):
        response = api_as(user).post("/api/invites/", {"email": "x@example.com"},
                                     format="json")
        assert response.status_code == 403
    taken = api_as(admin_user).post("/api/invites/", {"email": viewer.email.upper()},
                                    format="json")
    assert taken.status_code == 409  # an account exists: the state (a conflict)
    assert taken.json()["email"] == [f"{viewer.email} has an account already."]
    bad = api_as(admin_user).post("/api/invites/", {"email": "not an address"},
                                  format="json")
    assert bad.status_code == 400 and "email" in bad.json()
    assert not Invite.objects.exists() and not mail.outbox


def test_an_admin_invites_from_the_admin(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("admin:accounts_invite_add"),
                           {"email": "Guest@Example.com"}, follow=True)
    assert response.status_code == 200
    row = Invite.objects.get()
    assert (row.email, row.invited_by) == ("guest@example.com", admin_user)
    (email,) = mail.outbox
    link = re.search(r"http://testserver(/accounts/invite/\S+/)", email.body).group(1)
    assert link in response.content.decode()  # shown once to the admin
    assert client.get(link).status_code == 404  # signed in: not for an existing account
    client.logout()
    assert client.get(link).status_code == 302


def test_deleting_a_pending_invite_revokes_its_link(client, api_as, admin_user):
    sent = invite(api_as, admin_user)
    assert api_as(admin_user).delete(f"/api/invites/{sent['id']}/").status_code == 204
    assert client.get(link_path(sent["link"])).status_code == 404


def test_closed_sign_up_takes_no_invite(client, api_as, admin_user, policy):
    sent = invite(api_as, admin_user)
    policy("closed")
    assert client.get(link_path(sent["link"])).status_code == 404
    sign_up(client, "new@example.com")
    assert not User.objects.filter(email="new@example.com").exists()


def test_open_sign_up_lets_anyone_in(client, policy):
    policy("open")
    assert "Sign up" in client.get("/accounts/login/").content.decode()
    assert sign_up(client, "walk-in@example.com").status_code == 302
    assert User.objects.get(email="walk-in@example.com").role == VIEWER


@pytest.mark.parametrize(("signup", "verification"), [
    ("open", "mandatory"), ("invite", "none"), ("closed", "none")])
def test_open_sign_up_verifies_email_addresses_unless_told_otherwise(signup, verification):
    script = ("from django.conf import settings; "
              "print(settings.IMAGINEER_SIGNUP, settings.ACCOUNT_EMAIL_VERIFICATION)")
    env = subprocess_env(IMAGINEER_SIGNUP=signup)
    env.pop("IMAGINEER_EMAIL_VERIFICATION", None)
    result = manage("shell", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == [signup, verification]
    refused = manage("check", env=subprocess_env(IMAGINEER_SIGNUP="anyone"))
    assert refused.returncode != 0
    assert 'IMAGINEER_SIGNUP must be "open", "invite" or "closed"' in refused.stderr


# Usernames: pages show them to other users, so they must say nothing of the email.


def test_a_new_account_gets_a_username_that_reveals_nothing_of_its_email(client, policy):
    policy("open")
    sign_up(client, "jane.doe.1984@example.com")
    user = User.objects.get(email="jane.doe.1984@example.com")
    assert re.fullmatch(r"user-[a-z0-9]{6}", user.username)
    assert "jane" not in user.username and "doe" not in user.username


def test_a_new_account_may_choose_its_username(client, policy):
    policy("open")
    sign_up(client, "jane@example.com", username="stargazer")
    assert User.objects.get(email="jane@example.com").username == "stargazer"
