"""The user model: a username, an email address (private to the user and admins) and
roles as groups."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The platform's user. Roles are groups: see accounts/roles.py."""

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
