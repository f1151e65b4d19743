"""Sign-in throttling with django-axes: whose account an attempt is for, and the page a
locked-out client sees. The limits are settings (AXES_* in imagineer/settings.py)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import render


def attempted_account(request, credentials=None):
    """The account a sign-in attempt names, the same whichever form was used: the sign-in
    page sends an email, the admin and the API a username. An account that exists is
    named by its username; any other name is counted as it was typed, in lower case."""
    data = credentials if credentials is not None else getattr(request, "data", request.POST)
    login = (data.get("email") or data.get("username") or data.get("login") or "").strip()
    if not login:
        return None
    users = get_user_model().objects
    user = (
        users.filter(email__iexact=login).first() or users.filter(username__iexact=login).first()
    )
    return user.username if user is not None else login.lower()


def locked_out(request, original_response=None, credentials=None):
    """The answer to a sign-in while locked out: a page that says why and for how long."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT}
    return render(request, "accounts/locked_out.html", context, status=429)
