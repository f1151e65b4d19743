"""The API's root router, error format and health check."""

import logging

from rest_framework import routers, serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response

from .health import PARTS, report

log = logging.getLogger(__name__)

router = routers.DefaultRouter()


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


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    """The database, queue depth, workers' heartbeats and media disk (imagineer/health.py).
    `?only=database,disk`: only those parts decide the status."""
    only = [part for part in request.query_params.get("only", "").split(",") if part]
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        raise serializers.ValidationError(
            {"only": [f"Unknown part: {', '.join(unknown)}. Allowed: {', '.join(PARTS)}."]})
    healthy, body = report(only)
    if not healthy:
        log.error("health check failed", extra={"failing": body["failing"]})
    return Response(body, status=200 if healthy else 503)
