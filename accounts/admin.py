from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import RoleChange, User


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

    @admin.display(description="role")
    def role(self, obj):
        return obj.role or "-"


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
