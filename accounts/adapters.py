"""allauth adapters: who may sign up (IMAGINEER_SIGNUP), and the username a new account
gets.

The sign-up policy, one rule for the sign-up page and for Google:

- `open`: anyone may sign up (email verification is then mandatory unless
  IMAGINEER_EMAIL_VERIFICATION says otherwise);
- `invite` (the default): only from an admin's invite link (accounts.models.Invite):
  `accept_invite` keeps the invite in the session and stashes its address as verified;
  the sign-up must use that address, and uses the invite up;
- `closed`: nobody; admins make accounts in the admin.

A new account's username says nothing of its email address (pages show usernames to other
users): the one the person chose on the sign-up form, else a random `user-xxxxxx`.
"""

import secrets
import string

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404

from .models import Invite

INVITE_SESSION_KEY = "imagineer_invite"
OPEN, INVITE, CLOSED = "open", "invite", "closed"
SIGNUP_POLICIES = [OPEN, INVITE, CLOSED]
NEUTRAL_ALPHABET = string.ascii_lowercase + string.digits


def session_invite(request):
    """The pending invite whose link this browser followed, or None."""
    session = getattr(request, "session", None)
    return Invite.objects.by_key(session.get(INVITE_SESSION_KEY)) if session else None


def may_sign_up(request, email=None):
    """Whether the sign-up policy lets this request make an account (for `email`, when
    known: an invite is for its own address only)."""
    policy = settings.IMAGINEER_SIGNUP
    if policy == OPEN:
        return True
    if policy == INVITE:
        invite = session_invite(request)
        return invite is not None and (email is None or email.lower() == invite.email)
    return False


def neutral_username():
    """A free `user-xxxxxx`: random, nothing of the person's email or name."""
    users = get_user_model().objects
    while True:
        name = "user-" + "".join(secrets.choice(NEUTRAL_ALPHABET) for _ in range(6))
        if not users.filter(username__iexact=name).exists():
            return name


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return may_sign_up(request)

    def clean_email(self, email):
        email = super().clean_email(email)
        invite = session_invite(self.request) if settings.IMAGINEER_SIGNUP == INVITE else None
        if invite is not None and email.lower() != invite.email:
            raise ValidationError(f"This invitation is for {invite.email}: sign up with that "
                                  "address.")
        return email

    def populate_username(self, request, user):
        """The username the person chose, else a neutral one (never from the email)."""
        if not user.username:
            user.username = neutral_username()

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        use_invite(request, user)
        return user


def use_invite(request, user):
    """Mark the session's invite used by the new account, and forget it."""
    invite = session_invite(request)
    if invite is not None and user.pk is not None:
        invite.accept(user)
        request.session.pop(INVITE_SESSION_KEY, None)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request, provider, client_id=None):
        # The provider's URLs exist whether or not it is configured (GOOGLE_CLIENT_ID):
        # while it is not, they are missing pages, not server errors.
        try:
            return super().get_app(request, provider, client_id)
        except SocialApp.DoesNotExist:
            raise Http404(f"Sign-in with {provider} is not configured.") from None

    def is_open_for_signup(self, request, sociallogin):
        return may_sign_up(request, sociallogin.user.email or "")

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        use_invite(request, user)
        return user
