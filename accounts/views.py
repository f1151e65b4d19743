from allauth.account.adapter import get_adapter
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from .adapters import INVITE, INVITE_SESSION_KEY, OPEN
from .models import Invite, NsfwPreference, User, nsfw_mode


def signup_policy(request):
    """Template context: whether pages offer the sign-up page to anyone."""
    return {"signup_open": settings.IMAGINEER_SIGNUP == OPEN}


def nsfw_display(request):
    """Template context: how the signed-in user wants NSFW images (NsfwPreference):
    `nsfw_blur` (blur or hide: pictures flagged NSFW are blurred until clicked) and
    `nsfw_hide` (lists leave them out; an album cover is not shown)."""
    mode = nsfw_mode(request.user)
    return {"nsfw_blur": mode != NsfwPreference.SHOW, "nsfw_hide": mode == NsfwPreference.HIDE}


@login_required
def home(request):
    return render(request, "home.html")


class PreferencesForm(forms.ModelForm):
    """The user's own preferences: the model's fields and their rules (as /api/me/)."""

    class Meta:
        model = User
        fields = ["nsfw_preference"]
        widgets = {"nsfw_preference": forms.RadioSelect}


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request):
    """The signed-in user's own preferences (today how NSFW images are shown)."""
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Settings saved.")
            return redirect("account_settings")
        return render(request, "accounts/settings.html", {"form": form}, status=400)
    return render(request, "accounts/settings.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def api_token(request):
    """Create, replace or revoke the signed-in user's own API token."""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            Token.objects.filter(user=request.user).delete()
            Token.objects.create(user=request.user)
            messages.success(request, "A new API token was created.")
        elif action == "revoke":
            Token.objects.filter(user=request.user).delete()
            messages.success(request, "Your API token was revoked.")
        else:
            messages.error(request, "Unknown action: choose create or revoke.")
        return redirect("api_token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "accounts/token.html", {"token": token})


@require_http_methods(["GET"])
def accept_invite(request, key):
    """An invite link: keep the invite in the session and go to the sign-up page, whose
    address it has verified (accounts/adapters.py). A used, expired or unknown link, or any
    link while sign-up is not by invitation, answers 404 with a page saying so."""
    invite = Invite.objects.by_key(key) if settings.IMAGINEER_SIGNUP == INVITE else None
    if invite is None or request.user.is_authenticated:
        return render(request, "accounts/invite_invalid.html", status=404)
    request.session[INVITE_SESSION_KEY] = key
    get_adapter(request).stash_verified_email(request, invite.email)
    return redirect("account_signup")
