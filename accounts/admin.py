"""The admin of users and roles, and what in the admin only superusers may do.

The admin role holds every permission (roles.py), user and group management included, so
a permission cannot keep anything from it: it could grant itself that permission. What must
stay with superusers is checked against `is_superuser` here:

- django-q2's models (schedules, queued, successful and failed tasks). A schedule names
  any importable function and its arguments, and a worker runs it: code execution on the
  workers. Resubmitting a task, or editing a queued one, is the same. Admins may look.
- Making a superuser, and changing or deleting one (its password, its email): else an
  admin could make itself one, or take over one's account.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django_q import models as django_q_models

from . import limits
from .models import Invite, RoleChange, User


def is_superuser(request):
    return request.user.is_active and request.user.is_superuser


class RoleChangeInline(admin.TabularInline):
    model = RoleChange
    fk_name = "user"
    extra = 0
    can_delete = False
    fields = ["changed_at", "roles_before", "roles_after", "changed_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "role", "is_active", "last_login"]
    list_filter = ["groups", "is_active", "is_superuser"]
    inlines = [RoleChangeInline]
    fieldsets = [*BaseUserAdmin.fieldsets,
                 ("Limits", {"fields": ["storage_quota_bytes", "storage_used"]})]

    @admin.display(description="storage used (bytes)")
    def storage_used(self, obj):
        return limits.storage_used(obj) if obj.pk else 0

    @admin.display(description="role")
    def role(self, obj):
        return obj.role or "-"

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj), "storage_used"]
        return fields if is_superuser(request) else [*fields, "is_superuser"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not is_superuser(request):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not is_superuser(request):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(RoleChange)
class RoleChangeAdmin(admin.ModelAdmin):
    """The audit trail: read-only for everyone."""

    list_display = ["changed_at", "user", "roles_before", "roles_after", "changed_by"]
    list_filter = ["changed_at"]
    search_fields = ["user__username", "user__email", "changed_by__username"]
    readonly_fields = ["user", "roles_before", "roles_after", "changed_by", "changed_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SuperuserChangesOnly:
    """A ModelAdmin mixin: adding, changing, deleting and actions for superusers only."""

    def has_add_permission(self, request, *args):
        return is_superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return is_superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return is_superuser(request) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        return super().get_actions(request) if is_superuser(request) else {}


# django_q's own admin classes, registered by its admin module (before ours: INSTALLED_APPS
# order), registered again with the mixin.
for model in (django_q_models.Schedule, django_q_models.Success, django_q_models.Failure,
              django_q_models.OrmQ):
    if admin.site.is_registered(model):
        model_admin = type(admin.site.get_model_admin(model))
        admin.site.unregister(model)
        admin.site.register(model, type(model_admin.__name__, (SuperuserChangesOnly, model_admin),
                                        {"__module__": __name__}))


class InviteForm(forms.ModelForm):
    class Meta:
        model = Invite
        fields = ["email"]

    def clean_email(self):
        try:
            return Invite.check_email(self.cleaned_data["email"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["email"]) from None


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    """Invite by email (IMAGINEER_SIGNUP=invite): adding one sends its link. An invite
    cannot be changed; deleting a pending one revokes its link."""

    form = InviteForm
    list_display = ["email", "status", "invited_by", "created_at", "expires_at",
                    "accepted_by"]
    search_fields = ["email"]
    readonly_fields = ["invited_by", "created_at", "expires_at", "accepted_at", "accepted_by"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        invite, key = Invite.create(form.cleaned_data["email"], by=request.user)
        link = Invite.link(request, key)
        invite.send(link)
        obj.pk = invite.pk
        self.message_user(request, f"An invitation was sent to {invite.email}; its link "
                                   f"(shown once): {link}", messages.SUCCESS)
