"""The API's shared parts: the router every app registers its viewsets on, the error
format (one body per kind of error, described once for the schema), the permission by
action, and the exception handler that answers the rules' own errors (Django's
ValidationError, core.errors.LimitExceeded) without each view re-wrapping them."""

from collections import Counter

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import routers, serializers, status, views
from rest_framework.exceptions import APIException
from rest_framework.permissions import BasePermission
from rest_framework.schemas import DefaultSchema

from .errors import LimitExceeded
from .filters import IdField
from .pagination import BAD_PAGE_SIZE

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
    413: ("The storage quota: storing this would take the caller past the bytes they may "
          "store (accounts/limits.py). Waiting does not help: delete something first.",
          {"detail": "Storage quota: you store 10485000 bytes and this needs 48213 more; "
                     "your quota is 10485760 bytes. Delete images or models, or ask an admin "
                     "for a larger quota."}),
    409: ("In use: other rows still need it (the message names them), so it cannot be "
          "deleted.", {"detail": "Cannot delete it: it is still used by 2 batches."}),
    429: ("A per-user limit (a rate or a cap) was hit: try again after `Retry-After` "
          "seconds.",
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


def document(view, **operations):
    """Declare the OpenAPI schema of a view's operations from the app's schema.py, so that
    api.py reads as views: `document(JobViewSet, list=extend_schema(...), ...)` is
    `@extend_schema_view(list=...)` on the view, applied by drf-spectacular when it builds
    the schema. `view` is a view class or an @api_view function; `operations` are named by
    action (list, create, cancel...) or, for a function view, by HTTP method (get, post)."""
    target = getattr(view, "cls", view)

    class Declarations(OpenApiViewExtension):
        target_class = target

        def view_replacement(self):
            return extend_schema_view(**operations)(type(target.__name__, (target,), {}))

    Declarations.__name__ = f"{target.__name__}Schema"
    return Declarations


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, but only a list is paginated: an upload that answers a plain list
    (POST /api/images/) would otherwise be described as a page of results. A paginated list
    also answers 400 for a page size out of range or a cursor it did not give
    (core/pagination.py)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """A field's schema, with the rule its validator checks (`with_rules`)."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        rule = getattr(field, "openapi_rule", None)
        return {**schema, **rule} if rule else schema

    def _get_paginator(self):
        if getattr(self.view, "action", "list") != "list":
            return None
        return super()._get_paginator()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if self._get_paginator():
            if "400" not in responses:
                responses["400"] = self._get_response_for_code(BAD_PAGE, "400",
                                                              direction=direction)
        return responses


BAD_PAGE = errors(400, examples={400: {"page_size": [BAD_PAGE_SIZE]}})[400]
"""A page size out of range, or a `cursor` the list did not give (BAD_CURSOR)."""


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


def with_rules(fields, rules):
    """Give serializer fields the OpenAPI rules (ranges, multiples...) of the validator
    that checks them, for the schema only: the validator stays the one that refuses, with
    its own messages. Returns `fields` (a serializer's get_fields())."""
    for name, rule in rules.items():
        if name in fields:
            fields[name].openapi_rule = rule
    return fields


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


def integer_param(params, name):
    """An integer id sent as a form field (a query parameter: core.filters), or None when
    absent or empty; a 400 naming it when it is no id."""
    try:
        return IdField().clean(params.get(name))
    except DjangoValidationError as exc:
        raise serializers.ValidationError({name: exc.messages}) from exc


class InUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "in_use"


class Limited(APIException):
    """A LimitExceeded as DRF answers it: its status, and Retry-After as for `Throttled`."""

    def __init__(self, limit):
        super().__init__(str(limit))
        self.status_code = limit.status
        self.wait = int(limit.headers["Retry-After"]) if limit.headers else None


def exception_handler(exc, context):
    """DRF's, and the errors the rules raise, so that no view re-wraps them:

    - Django's ValidationError: 400, each field's messages (`detail` when it names none);
    - LimitExceeded: its status (429, 413 or 503), `{"detail": ...}` and `Retry-After`
      (not for 413);
    - ProtectedError (a PROTECT foreign key: a prompt set's batches, a model's jobs and
      runs): 409 naming what still uses the row, instead of a 500."""
    if isinstance(exc, DjangoValidationError):
        exc = serializers.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
    elif isinstance(exc, LimitExceeded):
        exc = Limited(exc)
    elif isinstance(exc, ProtectedError):
        users = Counter(obj._meta for obj in exc.protected_objects)
        named = ", ".join(
            f"{count} {meta.verbose_name if count == 1 else meta.verbose_name_plural}"
            for meta, count in sorted(users.items(), key=lambda item: item[0].label)
        )
        exc = InUse(f"Cannot delete it: it is still used by {named}.")
    return views.exception_handler(exc, context)


