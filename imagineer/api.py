"""The API's root router, error format and health check."""

import logging
from collections import Counter

from django.db import connection
from django.db.models import ProtectedError
from rest_framework import routers, serializers, status, views
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response

log = logging.getLogger(__name__)


class Router(routers.DefaultRouter):
    # No `.json` twins of the routes: the views' actions take no `format` argument (each
    # answered 500 there), and `?format=json` or the Accept header pick the format anyway.
    include_format_suffixes = False


router = Router()


class ActionPermission(BasePermission):
    """Signed-in users only; each action needs the permissions the view lists for it in
    `action_permissions` (actions it does not list need none beyond signing in)."""

    def has_permission(self, request, view):
        if not request.user.is_authenticated:
            return False
        needed = getattr(view, "action_permissions", {}).get(view.action, [])
        return request.user.has_perms(needed)


class RejectUnknownFields:
    """Serializer mixin: a field the serializer does not know is a 400, so that a typo
    in a script ("step" for "steps") surfaces instead of silently taking a default."""

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            known = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data.keys()) - known)
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field. Allowed: " + ", ".join(sorted(known)) + "."]
                     for name in unknown}
                )
        return super().to_internal_value(data)


def django_errors(exc):
    """A Django ValidationError as DRF's per-field error."""
    if hasattr(exc, "message_dict"):
        return serializers.ValidationError(exc.message_dict)
    return serializers.ValidationError({"detail": exc.messages})


class InUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"


def exception_handler(exc, context):
    """DRF's, and a 409 naming what still uses a row that cannot be deleted (a PROTECT
    foreign key: a prompt set's batches, a model's jobs and runs) instead of a 500."""
    if isinstance(exc, ProtectedError):
        users = Counter(obj._meta for obj in exc.protected_objects)
        named = ", ".join(
            f"{count} {meta.verbose_name if count == 1 else meta.verbose_name_plural}"
            for meta, count in sorted(users.items(), key=lambda item: item[0].label)
        )
        exc = InUse(f"Cannot delete it: it is still used by {named}.")
    return views.exception_handler(exc, context)


def check_database():
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure to reach the database is "unhealthy"
        return f"error: {exc.__class__.__name__}: {str(exc).strip()[:200]}"
    return "ok"


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    checks = {"database": check_database()}
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        log.error("health check failed", extra={"checks": checks})
    return Response({"status": "ok" if healthy else "unhealthy", **checks},
                    status=200 if healthy else 503)
