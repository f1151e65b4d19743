"""The API's root router, error format and health check."""

import logging
from collections import Counter

from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.views import defaults
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import routers, serializers, status, views
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.schemas import DefaultSchema

from . import metrics
from .health import PARTS, report
from .pagination import BAD_PAGE_SIZE

log = logging.getLogger(__name__)


# The error format, as the schema (/api/schema/) describes it: one body for each kind of
# error, shared by every operation through `errors()`.


class ErrorSerializer(serializers.Serializer):
    """Every error but invalid input: one message."""

    detail = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """Invalid input (400): each key names a field, each value lists what is wrong with it.
    `non_field_errors` or `detail` stand for the request as a whole (`detail` is one message
    when the body could not be read at all, e.g. malformed JSON); a list of objects (one a
    line, e.g. `loras`) answers an object with the errors of each wrong line under its
    index: `{"loras": {"0": {"id": ["..."]}}}`."""


class ValidationErrorSchema(OpenApiSerializerExtension):
    target_class = ValidationErrorSerializer

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": ValidationErrorSerializer.__doc__,
            "additionalProperties": {
                "anyOf": [
                    {"type": "array",
                     "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
                    {"type": "object"},  # the lines of a list, by index
                    {"type": "string"},  # `detail`: a body that could not be parsed
                ],
            },
        }


ERRORS = {
    400: ("Invalid input: nothing was changed.", {"name": ["This field is required."]}),
    401: ("No credentials, or a token that is not valid.",
          {"detail": "Authentication credentials were not provided."}),
    403: ("Signed in, but the role (or, for one object, the relation to it) does not allow "
          "this.", {"detail": "You do not have permission to perform this action."}),
    404: ("No such object, or one the caller may not see.", {"detail": "Not found."}),
    409: ("In use: other rows still need it (the message names them), so it cannot be "
          "deleted.", {"detail": "Cannot delete it: it is still used by 2 batches."}),
    429: ("A per-user limit was hit: try again after `Retry-After` seconds.",
          {"detail": "Rate limit: at most 10 generation requests per minute."}),
    503: ("Unavailable for now: try again later.", {"detail": "Try again later."}),
}


def errors(*codes, missing=None, examples=None):
    """Error responses for `extend_schema(responses=...)`: the shared body and description of
    each code, with an example body: `examples[code]` when given (what this operation
    answers), else the general one. `missing` names the model a 404 is about."""
    examples = dict(examples or {})
    if missing:
        examples.setdefault(404, {"detail": f"No {missing} matches the given query."})
    return {
        code: OpenApiResponse(
            ValidationErrorSerializer if code == 400 else ErrorSerializer,
            description=ERRORS[code][0],
            examples=[OpenApiExample(f"{code} error", value=examples.get(code, ERRORS[code][1]))],
        )
        for code in codes
    }


def example(name, value, **kwargs):
    """One example body for `extend_schema(examples=...)`: of the request with request=True,
    else of the response (200 and 201 unless `status_codes` says otherwise)."""
    if kwargs.pop("request", False):
        return OpenApiExample(name, value=value, request_only=True, **kwargs)
    return OpenApiExample(name, value=value, response_only=True, **kwargs)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, but only a list is paginated: an upload that answers a plain list
    (POST /api/images/) would otherwise be described as a page of results. A paginated list
    also answers 404 for a page that does not exist (DRF's paginator: `?page=0`, `?page=x`,
    a page past the last), and 400 for a page size out of range."""

    def _get_paginator(self):
        if getattr(self.view, "action", "list") != "list":
            return None
        return super()._get_paginator()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if self._get_paginator():
            for code, response in (("400", BAD_PAGE), ("404", NO_SUCH_PAGE)):
                if code not in responses:
                    responses[code] = self._get_response_for_code(response, code,
                                                                  direction=direction)
        return responses


NO_SUCH_PAGE = OpenApiResponse(
    ErrorSerializer,
    description="No such page: `page` is past the last page, or not a positive number.",
    examples=[OpenApiExample("404 error", value={"detail": "Invalid page."})],
)
BAD_PAGE = errors(400, examples={400: {"page_size": [BAD_PAGE_SIZE]}})[400]


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


class APIRootView(routers.APIRootView):
    """The API's collections by name. DRF leaves its root out of schemas; it is documented
    here, so that every URL under /api/ is."""

    schema = DefaultSchema()

    @extend_schema(
        summary="List the collections",
        tags=["api"],
        responses={
            200: OpenApiResponse(
                {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}},
                description="Each collection's name and URL.",
            ),
            **errors(401),
        },
        examples=[example("Collections", {
            "images": "http://127.0.0.1:8000/api/images/",
            "albums": "http://127.0.0.1:8000/api/albums/",
            "jobs": "http://127.0.0.1:8000/api/jobs/",
        })],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class Router(routers.DefaultRouter):
    APIRootView = APIRootView
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


# Query parameters: a value that is not what the schema says is a 400 naming it, never
# ignored and never a 500. Each returns None when the parameter is absent or empty.


def is_id(number):
    """An int that a database integer column holds: 64 bits. A larger one is no row's id,
    and SQLite raises on it (OverflowError) rather than finding nothing."""
    return (isinstance(number, int) and not isinstance(number, bool)
            and -(2**63) <= number < 2**63)


def integer_param(params, name):
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if not is_id(number):
        raise serializers.ValidationError({name: [f"{value!r} is not an integer id"]})
    return number


def boolean_param(params, name):
    value = params.get(name)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise serializers.ValidationError({name: [f"{value!r} is not a boolean: use true or false"]})


def choice_param(params, name, choices):
    value = params.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise serializers.ValidationError(
            {name: [f"{value!r} is not one of {', '.join(choices)}"]})
    return value


def text_param(params, name):
    value = params.get(name, "").strip()
    if "\x00" in value:  # DRF's rule for text fields; PostgreSQL cannot compare with it
        raise serializers.ValidationError({name: ["Null characters are not allowed."]})
    return value or None


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


HEALTHY = {
    "status": "ok", "failing": [], "database": "ok",
    "queue_depth": {"generation": 0, "training": 0},
    "workers": {"status": "ok", "timeout_seconds": 120, "workers": [
        {"name": "gpu1:4242", "cluster": "imagineer", "started_at": "2026-11-26T07:00:00Z",
         "last_seen": "2026-11-26T07:10:00Z", "seconds_ago": 12.5}]},
    "disk": {"status": "ok", "free_mb": 51200, "free_percent": 40.0, "min_free_mb": 1024},
}


@extend_schema(
    summary="Check the service's health",
    description="For load balancers and monitors: no authentication for the status alone "
                '(`{"status": "ok"}` or `{"status": "unhealthy"}`, 200 or 503). The report '
                "(each part, queue depths, workers, disk) is for the metrics token "
                "(`Authorization: Bearer <IMAGINEER_METRICS_TOKEN>`) or a staff session. "
                'Each part\'s check is "ok", "skipped: ..." or "error: ..."; any error answers '
                "503 and is named in `failing`. `?only=database,disk` lets only those parts "
                "decide the status (a web container's probe need not fail while no worker "
                "runs).",
    tags=["health"],
    parameters=[OpenApiParameter(
        "only", OpenApiTypes.STR, description="Comma-separated parts that decide the status: "
        + ", ".join(PARTS) + ". Default: all.")],
    responses={
        200: OpenApiResponse(HealthSerializer, description="Healthy."),
        **errors(400, examples={400: {"only": ["Unknown part: cpu. Allowed: "
                                               + ", ".join(PARTS) + "."]}}),
        503: OpenApiResponse(HealthSerializer, description="Unhealthy: `failing` names the "
                                                           "parts, and their checks say why."),
    },
    examples=[
        example("Healthy, to anyone", {"status": "ok"}, status_codes=[200]),
        example("Unhealthy, to anyone", {"status": "unhealthy"}, status_codes=[503]),
        example("Healthy", HEALTHY, status_codes=[200]),
        example("No worker", {
            **HEALTHY, "status": "unhealthy", "failing": ["workers"],
            "workers": {"status": "error: no worker seen in the last 120 s: imagineer, training",
                        "timeout_seconds": 120, "workers": []},
        }, status_codes=[503]),
    ],
)
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
