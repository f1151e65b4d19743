"""The project's own API views: the health check, and Django's own error answers under
/api/ in the API's error format. The shared parts every app uses are in core/api.py."""

import logging

from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.views import defaults
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from . import metrics
from .health import PARTS, report

log = logging.getLogger(__name__)


# Django's own error answers (`handler400`, `handler404`, `handler500`; used while DEBUG is
# off): the API's error body under /api/, as every other API error; the site's pages
# elsewhere. A 400 here is a request Django refused before any view: too many fields or
# files, or too large a body outside the files (the message says which), or a bad host.
READABLE_400 = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def not_found(request, exception):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception):
    if request.path.startswith("/api/"):
        detail = str(exception) if isinstance(exception, READABLE_400) else "Bad request."
        return JsonResponse({"detail": detail}, status=400)
    return defaults.bad_request(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)


class HealthSerializer(serializers.Serializer):
    """The status for everyone; the other fields for the metrics token or a staff session."""

    status = serializers.ChoiceField(choices=["ok", "unhealthy"])
    failing = serializers.ListField(child=serializers.ChoiceField(choices=PARTS),
                                    required=False,
                                    help_text="The parts whose check is an error.")
    database = serializers.CharField(
        required=False, help_text='"ok", or "error: " and the kind of error (never the '
                                  "driver's message: the server log has it).")
    queue_depth = serializers.DictField(
        child=serializers.IntegerField(), allow_null=True, required=False,
        help_text="Queued work per queue; null while the database is down.")
    workers = serializers.JSONField(
        required=False,
        help_text="status, timeout_seconds, and each worker's name, cluster, started_at, "
                  "last_seen and seconds_ago.")
    disk = serializers.JSONField(
        required=False,
        help_text="status, free_mb, free_percent and min_free_mb of the media disk.")


@api_view(["GET"])
@authentication_classes([])  # see_health_report reads the credentials itself
@permission_classes([AllowAny])
def health(request):
    """The database, queue depth, workers' heartbeats and media disk (imagineer/health.py).
    `?only=database,disk`: only those parts decide the status. The report for the metrics
    token or a staff session; the status alone for anyone else."""
    only = [part for part in request.query_params.get("only", "").split(",") if part]
    unknown = sorted(set(only) - set(PARTS))
    if unknown:
        raise serializers.ValidationError(
            {"only": [f"Unknown part: {', '.join(unknown)}. Allowed: {', '.join(PARTS)}."]})
    healthy, body = report(only)
    if not healthy:
        log.error("health check failed", extra={"failing": body["failing"]})
    if not see_health_report(request, database_up=body["database"] == "ok"):
        body = {"status": body["status"]}
    return Response(body, status=200 if healthy else 503)


def see_health_report(request, *, database_up):
    """The metrics token (monitors), or a staff user's session (people). The session is
    read here, not by DRF's authentication (which would need the database to answer even
    the anonymous status), and only while the database answers: it lives there."""
    token = settings.IMAGINEER_METRICS_TOKEN
    if token and metrics.authorized(request, token):
        return True
    return database_up and get_user(request._request).is_staff
