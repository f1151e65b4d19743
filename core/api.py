"""The API's shared parts: the router every app registers its viewsets on, the error
format (one body per kind of error, described once for the schema), the permission by
action, and the exception handler that answers the rules' own errors (Django's
ValidationError, core.errors.LimitExceeded) without each view re-wrapping them."""

import functools
import inspect
from collections import Counter
from collections.abc import Mapping

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import QueryDict
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import routers, serializers, status, views
from rest_framework.exceptions import APIException, ErrorDetail
from rest_framework.fields import SkipField
from rest_framework.permissions import BasePermission
from rest_framework.relations import PKOnlyObject
from rest_framework.schemas import DefaultSchema

from .errors import CONFLICT, FORBIDDEN, NO_SUCH_ROW, LimitExceeded
from .filters import IdField
from .pagination import BAD_PAGE_SIZE, NO_SUCH_CURSOR
from .texts import NO_NUL, text_rule

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


NOT_FOUND_IN_REQUEST = "Not found: the fields below name no object you may see."
CONFLICT_IN_REQUEST = "Conflict: the state of what the fields below name does not allow it."
FORBIDDEN_IN_REQUEST = "Forbidden: this server's settings do not allow the fields below."

ERRORS = {
    400: ("Invalid input: nothing was changed.", {"name": ["This field is required."]}),
    401: ("No credentials, or a token that is not valid.",
          {"detail": "Authentication credentials were not provided."}),
    403: ("Signed in, but the role (or, for one object, the relation to it) does not allow "
          "this.", {"detail": "You do not have permission to perform this action."}),
    404: ("No such object, or one the caller may not see; for an id or slug in the body or "
          "a filter, its field is named beside `detail`.", {"detail": "Not found."}),
    413: ("The storage quota: storing this would take the caller past the bytes they may "
          "store (accounts/limits.py). Waiting does not help: delete something first.",
          {"detail": "Storage quota: you store 10485000 bytes and this needs 48213 more; "
                     "your quota is 10485760 bytes. Delete images or models, or ask an admin "
                     "for a larger quota."}),
    409: ("A conflict with the state of what the request names: in use (other rows still "
          "need it, the message names them), so it cannot be deleted; or a state that does "
          "not allow the change (a slug already taken, a run that has not failed, a retired "
          "model), its field named beside `detail`.",
          {"detail": "Cannot delete it: it is still used by 2 batches."}),
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
    also answers 400 for a page size out of range or a cursor of the wrong shape, 404 for
    one it did not give (core/pagination.py); an operation with a body answers 404 for an
    id in it that names no row (exception_handler)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """A field's schema, with the rule its validator checks (`with_rules`)."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        rule = getattr(field, "openapi_rule", None)
        if direction == "request" and isinstance(field, serializers.SlugField) and (
                not field.allow_unicode):
            schema = {**schema, "pattern": "^[-a-zA-Z0-9_]+$"}  # its validator's
        if (direction == "request" and isinstance(field, serializers.CharField)
                and schema.get("type") == "string" and "pattern" not in schema):
            stripped = stripped_text_rule(field, schema)
            # DRF refuses a NUL in any text; one it strips says so (core.texts)
            schema = {**schema, **stripped} if stripped and not rule else {
                **schema, "pattern": NO_NUL}
        return {**schema, **rule} if rule else schema

    def _resolve_path_parameters(self, variables):
        """drf-spectacular's, with an id the Router matches as ASCII digits (ID_PATTERN)
        typed by its model field, an integer, as the default pattern is."""
        regex = self.path_regex
        self.path_regex = regex.replace(f">{ID_PATTERN})", ">[^/.]+)")
        try:
            return super()._resolve_path_parameters(variables)
        finally:
            self.path_regex = regex

    def _insert_field_validators(self, field, schema):
        """drf-spectacular's; a text that may be blank becomes `oneOf` its rule and the
        empty text. The rule's side is given `minLength: 1`: most rules (the NUL rule
        `^[^\\x00]*$`) match the empty text too, and then both sides would, which `oneOf`
        refuses, so the schema would call every empty text invalid. A field whose own rule
        says `minLength` (a text its validator requires, though DRF lets it be blank so
        that the validator's message answers) gets no empty alternative."""
        super()._insert_field_validators(field, schema)
        rule = stripped_text_rule(field, schema)
        for part in [schema, *schema.get("oneOf", [])]:
            if rule and part.get("pattern") == rule["pattern"]:
                part.pop("maxLength", None)  # the pattern's, of the stripped text
        choices = schema.get("oneOf", [])
        if len(choices) == 2 and choices[1] == {"type": "string", "maxLength": 0}:
            if getattr(field, "openapi_rule", {}).get("minLength"):
                schema.update(schema.pop("oneOf")[0])
            else:
                choices[0]["minLength"] = max(choices[0].get("minLength", 0), 1)

    def _get_request_body(self, direction="request"):
        """drf-spectacular's, with the forms said as the server reads them (form_bodies),
        and a DELETE's body where the operation declares one (`extend_schema(request=...)`:
        DELETE /api/albums/{id}/images/ takes `image_ids`)."""
        if self.method == "DELETE":
            declared, default = self.get_request_serializer(), super().get_request_serializer()
            if declared is None or kind(declared) is kind(default):
                return None
            self.method = "POST"
            try:
                body = super()._get_request_body(direction)
            finally:
                self.method = "DELETE"
        else:
            body = super()._get_request_body(direction)
        return self.form_bodies(body) if body else body

    def form_bodies(self, body):
        """Every body is JSON, without files (json_view); a form (DRF reads multipart and
        urlencoded bodies too) is declared only where a file is sent, as multipart, and
        only with what a form can say: text and files. A form has no null, no list of
        objects and no object (`cover=null` is the text "null"), so those fields are left
        out of its schema; JSON says them."""
        content = body["content"]
        json = content.get("application/json")
        if json and any(is_file(prop) for prop in
                        self.resolved(json["schema"]).get("properties", {}).values()):
            json["schema"] = json_view(self.resolved(json["schema"]))
            # A new object's field that stands in for the file JSON cannot send (a model's
            # source) is required there.
            alternative = getattr(kind(self.get_request_serializer()), "file_alternative", None)
            if self.method == "POST" and alternative:
                json["schema"]["required"] = [*json["schema"].get("required", []), alternative]
            # Nor may it be empty in JSON, as it may beside a file in a form.
            properties = json["schema"].get("properties", {})
            if alternative in properties and "oneOf" in properties[alternative]:
                prop = dict(properties[alternative])
                choices = [one for one in prop.pop("oneOf") if one.get("maxLength") != 0]
                prop = {**prop, **choices[0]} if len(choices) == 1 else {**prop,
                                                                          "oneOf": choices}
                json["schema"]["properties"] = {**properties, alternative: prop}
        for media_type in [name for name in content if name in FORM_MEDIA_TYPES]:
            schema = self.resolved(content[media_type]["schema"])
            properties = schema.get("properties", {})
            if media_type == "application/x-www-form-urlencoded" or not any(
                    is_file(prop) for prop in properties.values()):
                del content[media_type]
                continue
            serializer = kind(self.get_request_serializer())
            fields = (serializer().fields if issubclass(serializer, serializers.Serializer)
                      else {})
            kept = {name: form_field(prop, optional=name in fields and not fields[name].required)
                    for name, prop in properties.items()
                    if is_file(prop) or not is_structured(self.resolved(prop))}
            form = {**schema, "properties": kept}
            if "required" in schema:
                form["required"] = [name for name in schema["required"] if name in kept]
            alternative = getattr(serializer, "file_alternative", None)
            files = [name for name, prop in kept.items() if is_file(prop)]
            if alternative and files:
                # The alternative (a model's source) may be empty only beside a file; a new
                # object needs one of the two, a change neither.
                given = {"properties": {alternative: {"minLength": 1}}}
                form["anyOf"] = [{**given, "required": [alternative]} if self.method == "POST"
                                 else given, {"required": files[:1]}]
            # Rules across a form's fields (in a form, a field is sent or not: no null).
            form.update(getattr(serializer, "form_rule", {}))
            entry = {"schema": form}
            # (Only a field of one file: schemathesis 4.32 sends a part of a list of files,
            # or of an id-or-file field, without a file name once it has an encoding.)
            encoding = {name: part_encoding(name, prop) for name, prop in kept.items()
                        if content_types(prop) and prop.get("format") == "binary"}
            if encoding:
                entry["encoding"] = encoding
            examples = content[media_type].get("examples", {})
            if all(set(example.get("value", {})) <= set(kept) for example in examples.values()):
                entry.update({"examples": examples} if examples else {})
            content[media_type] = entry
        return body

    def resolved(self, schema):
        """A schema, its $ref followed to the component."""
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            return self.registry._components[(ref.rsplit("/", 1)[1], "schemas")].schema
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and isinstance(serializer, RejectUnknownFields):
            schema["additionalProperties"] = False
        if direction == "request":  # rules across fields, e.g. one of two required
            schema.update(getattr(serializer, "openapi_rule", {}))
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        """drf-spectacular's; but only the object's own serializer is partial in a PATCH: a
        body an action declares (PATCH /api/albums/{id}/order/: `image_ids`) is whole."""
        if self.method == "PATCH" and kind(serializer) is not kind(
                super().get_request_serializer()):
            self.method = "POST"
            try:
                return super()._get_request_for_media_type(serializer, direction)
            finally:
                self.method = "PATCH"
        return super()._get_request_for_media_type(serializer, direction)

    def _get_paginator(self):
        if getattr(self.view, "action", "list") != "list":
            return None
        return super()._get_paginator()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            # An id in the body that names no row; a state that does not allow the change
            # (exception_handler).
            for code, answer in (("404", NO_SUCH_ID), ("409", STATE_CONFLICT)):
                if code not in responses:
                    responses[code] = self._get_response_for_code(answer, code,
                                                                  direction=direction)
        if self._get_paginator():
            if "400" not in responses:
                responses["400"] = self._get_response_for_code(BAD_PAGE, "400",
                                                              direction=direction)
            if "404" not in responses:
                responses["404"] = self._get_response_for_code(NO_SUCH_PAGE, "404",
                                                              direction=direction)
        return responses


NO_SUCH_ID = errors(404, examples={404: {
    "detail": NOT_FOUND_IN_REQUEST,
    "album": ["No album with id 42 that you may add to."]}})[404]
"""An id or slug in the body naming no row the caller may see."""
STATE_CONFLICT = errors(409, examples={409: {
    "detail": CONFLICT_IN_REQUEST,
    "model": ["no base model is registered; run `manage.py create_demo_model`."]}})[409]
"""A well-formed request that the state of what it names does not allow."""
def kind(serializer):
    return serializer if isinstance(serializer, type) else type(serializer)


def stripped_text_rule(field, schema):
    """The rule (core.texts.text_rule) of a text field DRF strips of white space before
    it checks it (blank, max_length), or None for a text of another kind (a format, a
    choice, a minimum length of its own, an own pattern)."""
    if not (isinstance(field, serializers.CharField) and field.trim_whitespace) or any(
            key in schema for key in ("format", "enum")) or (field.min_length or 0) > 1:
        return None
    return text_rule(field.max_length, required=not field.allow_blank)


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_file(schema):
    """A file field's schema: binary, a list of binaries, or an id or a file."""
    if schema.get("format") == "binary":
        return True
    if schema.get("type") == "array":
        return is_file(schema.get("items", {}))
    return any(is_file(option) for option in schema.get("oneOf", []))


def is_structured(schema):
    """An object or a list of objects: what a form's text fields cannot say."""
    if "$ref" in schema or schema.get("type") == "object":
        return True
    if schema.get("type") == "array":
        return is_structured(schema.get("items", {}))
    return any(is_structured(option) for option in schema.get("oneOf", [])
               + schema.get("allOf", []) + schema.get("anyOf", []))


class FileOfTypes(serializers.FileField):
    """A file of the media types `content_types` ("image/png, image/jpeg"), which the
    schema's multipart body names (`encoding`, with a file name of the kind the server
    reads, e.g. "file.png"), so that clients and fuzzers send those."""

    def __init__(self, content_types, filename, **kwargs):
        super().__init__(**kwargs)
        self.openapi_rule = {CONTENT_TYPES: content_types, FILENAME: filename}


CONTENT_TYPES, FILENAME = "x-content-types", "x-filename"


def content_types(schema):
    """The media types a file field's schema names (FileOfTypes), if any."""
    return schema.get(CONTENT_TYPES) or schema.get("items", {}).get(CONTENT_TYPES)


def part_encoding(name, schema):
    """A multipart field's `encoding`: its media types, and a Content-Disposition with an
    example file name (without one, a part is a text field, not a file)."""
    types = content_types(schema)
    filename = schema.get(FILENAME) or schema.get("items", {}).get(FILENAME)
    encoding = {"contentType": types}
    if filename:
        encoding["headers"] = {"Content-Disposition": {
            "schema": {"type": "string"},
            "example": f'form-data; name="{name}"; filename="{filename}"'}}
    return encoding


def json_view(schema):
    """A body's schema as JSON can send it: no file (a file is sent as multipart); a field
    that takes an id or a file takes the id."""
    properties = {}
    for name, prop in schema.get("properties", {}).items():
        if "oneOf" in prop and is_file(prop):
            prop = {**prop, "oneOf": [option for option in prop["oneOf"] if not is_file(option)]}
            prop.pop(CONTENT_TYPES, None)
            prop.pop(FILENAME, None)
        elif is_file(prop):
            continue
        properties[name] = prop
    view = {**schema, "properties": properties}
    if "required" in schema:
        view["required"] = [name for name in schema["required"] if name in properties]
    return view


FORM_BOOLEAN = "^(?:{})$".format("|".join(sorted(
    value for value in serializers.BooleanField.TRUE_VALUES | serializers.BooleanField.FALSE_VALUES
    if isinstance(value, str))))


def form_field(schema, *, optional=False):
    """A field of a form: never null (a form has no null; leave the field out instead); a
    boolean is a text DRF reads as one (FORM_BOOLEAN: "true", "0", "on"...); a
    field that takes an id or a file takes the file (as JSON takes the id: json_view), so
    that its part is declared with a file name (`encoding`). A number or a choice of a
    field that is not required may be sent empty: DRF's Field.get_value reads an empty
    part of such a field as left out."""
    field = {name: value for name, value in schema.items() if name != "nullable"}
    if field.get("type") == "boolean":  # a text DRF reads as one: "true", "0", "on"...
        field = {**field, "type": "string", "pattern": FORM_BOOLEAN}
        field.pop("default", None)
    if "oneOf" in field and is_file(field):
        (upload,) = [option for option in field.pop("oneOf") if is_file(option)]
        field.update(upload)
    if optional and not is_file(field) and (field.get("type") in ("integer", "number") or (
            "enum" in field and "" not in field["enum"])):
        field = {"anyOf": [field, {"type": "string", "maxLength": 0}]}
    return field


BAD_PAGE = errors(400, examples={400: {"page_size": [BAD_PAGE_SIZE]}})[400]
"""A page size out of range, or a `cursor` that is not one (BAD_CURSOR)."""
NO_SUCH_PAGE = errors(404, examples={404: {"detail": NOT_FOUND_IN_REQUEST,
                                           "cursor": [NO_SUCH_CURSOR]}})[404]
"""A `cursor` of the right shape that this list did not give."""


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

    def get_lookup_regex(self, viewset, lookup_prefix=""):
        """An id in a path is ASCII digits, as the schema's integer says: the default
        `[^/.]+` let `/api/albums/𑓑/` name album 1 (int() reads any script's digits).
        Any other path is no object: 404. A viewset with its own regex (a slug) keeps it."""
        regex = super().get_lookup_regex(viewset, lookup_prefix)
        if getattr(viewset, "lookup_value_regex", None) is None:
            regex = regex.replace(f">{self._default_value_pattern})", f">{ID_PATTERN})")
        return regex


ID_PATTERN = "[0-9]+"  # an id in a path (Router)


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


class JsonTypes:
    """Serializer mixin: in a JSON body, a value must be of its field's JSON type, as the
    schema says (check_json_types): DRF alone reads 0 for a text as "0", "64" for a number
    as 64 and 0 as false. A form's values are all text, and read as DRF reads them."""

    def to_internal_value(self, data):
        check_json_types(self.fields, data)
        return super().to_internal_value(data)


class RejectUnknownFields(JsonTypes):
    """Serializer mixin: a field the serializer does not know is a 400, so that a typo
    in a script ("step" for "steps") surfaces instead of silently taking a default; the
    schema says so (`additionalProperties: false`, AutoSchema). And JsonTypes."""

    def to_internal_value(self, data):
        check_known_fields(data, [name for name, field in self.fields.items()
                                  if not field.read_only])
        return super().to_internal_value(data)


# Serializer mixin for answers of many rows (a page of jobs or images): the same
# representation as DRF's Serializer.to_representation, with what does not depend on the
# row worked out once per serializer, not once per row and field (a list's one child
# serializes every row of the page). A field that reads one attribute of the row (a model
# field, a foreign key's id, a related manager, a method DRF would call) reads it with
# getattr; any other (a method field, a nested serializer of the row itself, a dotted
# source) and any value that is not plain (a missing attribute, another callable) the way
# DRF reads it. DRF's way, per row and field (a generator over the fields, an ABC check of
# the row, a signature check of a method's value) was a third of serializing a page of
# jobs (bench/list_cost.py). A comment, not a docstring: drf-spectacular describes a
# serializer by the first docstring among its classes.
class ReadPlan:
    def to_representation(self, instance):
        if isinstance(instance, Mapping):
            return super().to_representation(instance)
        plans = self.__dict__.setdefault("_read_plans", {})
        plan = plans.get(type(instance))
        if plan is None:
            plan = plans[type(instance)] = [(field, *read_directly(field, type(instance)))
                                            for field in self._readable_fields]
        ret = {}
        for field, attribute, represent, method in plan:
            if attribute is not None:
                value = read_attribute(instance, attribute, method)
                if value is None:
                    ret[field.field_name] = None
                    continue
                if value is not UNREAD:
                    ret[field.field_name] = field.to_representation(value) if represent else value
                    continue
            try:  # DRF's way (Serializer.to_representation)
                value = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = value.pk if isinstance(value, PKOnlyObject) else value
            ret[field.field_name] = (None if check_for_none is None
                                     else field.to_representation(value))
        return ret


UNREAD = object()  # ReadPlan: a value to read the way DRF reads it


def read_attribute(instance, attribute, method):
    """What DRF's get_attribute gives for one attribute: the value, called when it is
    `method` of the row's class (one that DRF calls: no arguments needed), or a callable
    object (a related manager) as it is; UNREAD for anything else."""
    try:
        value = getattr(instance, attribute)
        if not callable(value):
            return value
        if method is not None and getattr(value, "__func__", None) is method:
            return value()
    except Exception:  # noqa: BLE001 (DRF's way answers it as DRF does)
        return UNREAD
    if (inspect.isbuiltin(value) or inspect.isfunction(value) or inspect.ismethod(value)
            or isinstance(value, functools.partial)):
        return UNREAD
    return value  # DRF's is_simple_callable: not a function, so not called


def read_directly(field, model):
    """(attribute, represent, method) when `field`'s value is `field.to_representation`
    of the row's attribute (represent: True; method: the class's function there when DRF
    calls it) or the attribute itself (a foreign key's id, as DRF's PrimaryKeyRelatedField
    gives it: represent False); (None, None, None) for DRF's way."""
    if len(field.source_attrs) != 1:
        return None, None, None
    name = field.source_attrs[0]
    kind = type(field)
    if kind.get_attribute is serializers.Field.get_attribute:
        member = inspect.getattr_static(model, name, None)
        method = None
        if inspect.isfunction(member):
            parameters = list(inspect.signature(member).parameters.values())[1:]
            if all(parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                   or parameter.default is not parameter.empty for parameter in parameters):
                method = member
        return name, True, method
    if (isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None
            and kind.get_attribute is serializers.RelatedField.get_attribute
            and kind.to_representation is serializers.PrimaryKeyRelatedField.to_representation
            and field.use_pk_only_optimization() and hasattr(model, "_meta")):
        try:
            column = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None, None, None
        if column.concrete and column.is_relation and column.many_to_one:
            return column.attname, False, None
    return None, None, None


def check_known_fields(data, known):
    """A 400 naming each field of `data` (a JSON object or a form, its files included) that
    is not in `known`: RejectUnknownFields' rule, and the views that read an upload's form
    themselves (POST /api/images/, an album's import) ask it too."""
    if hasattr(data, "keys"):
        unknown = sorted(set(data.keys()) - set(known))
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field. Allowed: " + ", ".join(sorted(known)) + "."]
                 for name in unknown}
            )


def check_json_types(fields, data):
    """In a JSON body (not a form, whose values are all text), a 400 naming each value not
    of its field's JSON type."""
    if isinstance(data, dict) and not isinstance(data, QueryDict):
        wrong = {name: [type_error(fields[name], value)] for name, value in data.items()
                 if name in fields and not of_json_type(fields[name], value)}
        if wrong:
            raise serializers.ValidationError(wrong)


def of_json_type(field, value):
    """Whether a JSON value has the type the schema gives `field` (null aside: the field
    says whether it may be null). Fields of other kinds check their values themselves."""
    if value is None:
        return True
    if isinstance(field, serializers.BooleanField):
        return isinstance(value, bool)
    if isinstance(field, serializers.IntegerField) or (  # an id: DRF reads "" as null
            isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None):
        # 2.0 is an integer to JSON Schema
        return ((isinstance(value, int) and not isinstance(value, bool))
                or (isinstance(value, float) and value.is_integer()))
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(field, serializers.CharField) or (
            isinstance(field, serializers.ChoiceField)
            and all(isinstance(choice, str) for choice in field.choices)):
        return isinstance(value, str)
    return True


def type_error(field, value):
    """The message of a JSON value not of its field's type (of_json_type)."""
    if isinstance(field, serializers.PrimaryKeyRelatedField):
        return field.error_messages["incorrect_type"].format(data_type=type(value).__name__)
    return field.error_messages.get("invalid", "Not a valid string.")


def integer_param(params, name):
    """An integer id sent as a form field (a query parameter: core.filters), or None when
    absent or empty; a 400 naming it when it is no id."""
    try:
        return IdField().clean(params.get(name))
    except DjangoValidationError as exc:
        raise serializers.ValidationError({name: exc.messages}) from exc




def error_codes(codes):
    """The codes of a ValidationError's get_codes(), flat."""
    if isinstance(codes, dict):
        return [code for value in codes.values() for code in error_codes(value)]
    if isinstance(codes, list):
        return [code for value in codes for code in error_codes(value)]
    return [codes]


def details(errors):
    """Django's ValidationErrors as DRF's messages, each keeping its code."""
    return [ErrorDetail(message, code=error.code or "invalid")
            for error in errors for message in error]


# Validation errors of a well-formed request, and the answer when they are all it has.
WELL_FORMED = {
    NO_SUCH_ROW: (status.HTTP_404_NOT_FOUND, NOT_FOUND_IN_REQUEST),
    FORBIDDEN: (status.HTTP_403_FORBIDDEN, FORBIDDEN_IN_REQUEST),
    CONFLICT: (status.HTTP_409_CONFLICT, CONFLICT_IN_REQUEST),
    "unique": (status.HTTP_409_CONFLICT, CONFLICT_IN_REQUEST),  # DRF's UniqueValidator
}


def well_formed_status(exc):
    """(status, detail) of a ValidationError whose every error is one of WELL_FORMED's,
    the first of them in its order (something named is missing before anything else);
    None for a 400."""
    answers = {WELL_FORMED.get(code) for code in error_codes(exc.get_codes())}
    if not answers or None in answers:
        return None
    return next(answer for answer in WELL_FORMED.values() if answer in answers)


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
      runs): 409 naming what still uses the row, instead of a 500;
    - a 400 whose every error is an id or slug naming no row the caller may see (the code
      `does_not_exist`: DRF's related fields', core.errors.NO_SUCH_ROW): 404, with those
      fields' messages beside `detail`. The request was well formed (the schema cannot
      know which rows exist): what it names is not found, as for an object's own URL.
      Likewise a slug already taken or a state that does not allow the change
      (core.errors.CONFLICT): 409."""
    if isinstance(exc, DjangoValidationError):
        exc = serializers.ValidationError(
            {field: details(errors) for field, errors in exc.error_dict.items()}
            if hasattr(exc, "error_dict") else {"detail": details(exc.error_list)})
    answer = isinstance(exc, serializers.ValidationError) and well_formed_status(exc)
    if answer:
        response = views.exception_handler(exc, context)
        if response is not None and isinstance(response.data, dict):
            response.status_code, detail = answer
            fields = {name: value for name, value in response.data.items() if name != "detail"}
            response.data = {"detail": detail, **fields}
        return response
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


