from django.contrib import admin

from .models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """The workers' heartbeats, as the health check sees them; read-only (workers write)."""

    list_display = ["name", "cluster", "started_at", "last_seen"]
    list_filter = ["cluster"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
