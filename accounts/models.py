"""The user model: a username, an email address (private to the user and admins) and
roles as groups; and the invitations to sign up."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import models
from django.urls import reverse
from django.utils import timezone

from core.errors import CONFLICT


class NsfwPreference(models.TextChoices):
    """How a user wants images flagged NSFW shown (albums.models.nsfw_mode)."""

    HIDE = "hide", "Hide them from lists"
    BLUR = "blur", "Blur them until clicked"
    SHOW = "show", "Show them"


def nsfw_mode(user):
    """How `user` wants NSFW images (NsfwPreference): hide, blur (the default, and anonymous
    visitors') or show."""
    return getattr(user, "nsfw_preference", None) or NsfwPreference.BLUR


class User(AbstractUser):
    """The platform's user. Roles are groups: see accounts/roles.py."""

    nsfw_preference = models.CharField(
        "NSFW images", max_length=8, choices=NsfwPreference.choices,
        default=NsfwPreference.BLUR,
        help_text="hide: left out of the user's lists of images, album pages and search "
                  "(an image opened by its id is still shown, blurred); blur: blurred until "
                  "clicked; show: shown as any other.")

    storage_quota_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, verbose_name="storage quota (bytes)",
        help_text="How many bytes of images and models this user may store. Empty: the "
                  "site's default (IMAGINEER_STORAGE_QUOTA_BYTES); 0: no limit. Admins have "
                  "none.",
    )

    class Meta:
        ordering = ["username"]

    @property
    def role(self):
        from .roles import role_of

        return role_of(self)

    @property
    def display_name(self):
        """How pages name the user to others: the full name, else the username. Never the
        email address: that is shown only to its owner and to admins (the admin)."""
        return self.get_full_name() or self.username


class RoleChange(models.Model):
    """One change of a user's roles, however it was made (admin, shell, API)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_changes"
    )
    roles_before = models.JSONField(default=list)
    roles_after = models.JSONField(default=list)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="role_changes_made",
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self):
        return f"{self.user}: {self.roles_before} -> {self.roles_after}"


def invite_key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


class InviteQuerySet(models.QuerySet):
    def pending(self):
        """Invites that may still be used: neither accepted nor expired."""
        return self.filter(accepted_at=None, expires_at__gt=timezone.now())

    def by_key(self, key):
        """The pending invite of the link's key, or None."""
        return self.pending().filter(key_hash=invite_key_hash(key or "")).first()


class Invite(models.Model):
    """An admin's invitation to sign up (IMAGINEER_SIGNUP=invite), sent by email as a link
    that holds a random key. Only the key's sha256 is kept, so the database alone opens no
    sign-up; the link works once, for its email address, until `expires_at`
    (IMAGINEER_INVITE_DAYS after it was made)."""

    email = models.EmailField()
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="invites_sent")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    editable=False)

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"invite for {self.email}"

    @property
    def status(self):
        if self.accepted_at:
            return "accepted"
        return "expired" if self.expires_at <= timezone.now() else "pending"

    @staticmethod
    def check_email(email):
        """The address, normalised, if an invite may be sent to it: a valid address that
        has no account yet. ValidationError naming `email` otherwise."""
        email = (email or "").strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError({"email": "Enter a valid email address."}) from None
        if User.objects.filter(email__iexact=email).exists():  # the state, not the request
            raise ValidationError({"email": ValidationError(
                f"{email} has an account already.", code=CONFLICT)})
        return email

    @classmethod
    def create(cls, email, *, by):
        """A new invite for `email` (check_email) and the key of its link, which is not
        stored: `(invite, key)`."""
        email = cls.check_email(email)
        key = secrets.token_urlsafe(32)
        invite = cls.objects.create(
            email=email, key_hash=invite_key_hash(key), invited_by=by,
            expires_at=timezone.now() + timedelta(days=settings.IMAGINEER_INVITE_DAYS))
        return invite, key

    @staticmethod
    def link(request, key):
        """The absolute URL of the invite link of `key`."""
        return request.build_absolute_uri(reverse("accept_invite", kwargs={"key": key}))

    def send(self, link):
        """Email the invite link."""
        days = settings.IMAGINEER_INVITE_DAYS
        send_mail(
            "You are invited to Imagineer",
            f"{self.invited_by.display_name if self.invited_by else 'An admin'} invites you to "
            f"Imagineer. Sign up with this address ({self.email}) from this link within "
            f"{days} days:\n\n{link}\n",
            None, [self.email])

    def accept(self, user):
        """Mark the invite used by `user`'s sign-up; False if it was used meanwhile."""
        return bool(Invite.objects.filter(pk=self.pk, accepted_at=None).update(
            accepted_at=timezone.now(), accepted_by=user))
