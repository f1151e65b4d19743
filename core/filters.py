"""The API's query filters (django-filter, which drf-spectacular documents by itself).

A value that is not what the schema says is a 400 naming the parameter, never ignored and
never a 500; an empty value filters nothing, and the schema says so of every filter
(`allowEmptyValue`, FilterSchema below), so that `?status=` is a request it allows. The
field types below say the rule once: an id is an integer a database column holds (64
bits: SQLite raises on a larger one rather than finding nothing), a boolean is true or
false, a choice one of the listed values, and a text holds no NUL (PostgreSQL cannot
compare with one: forms.CharField refuses it).
"""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.utils import extend_schema_field

from .texts import NO_NUL

TRUE, FALSE = ("1", "true", "yes"), ("0", "false", "no")


ID_RANGE = {"min_value": -(2**63), "max_value": 2**63 - 1}  # a serializer field's, for the schema


def is_id(number):
    """An int that a database integer column holds: 64 bits."""
    return (isinstance(number, int) and not isinstance(number, bool)
            and ID_RANGE["min_value"] <= number <= ID_RANGE["max_value"])


class IdField(forms.IntegerField):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = None
        if not is_id(number):
            raise ValidationError("%(value)r is not an integer id", code="invalid",
                                  params={"value": value})  # a % in the value stays text
        return number


class BooleanField(forms.NullBooleanField):
    widget = forms.TextInput  # NullBooleanSelect reads any other word as "unknown"

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if str(value).lower() in TRUE:
            return True
        if str(value).lower() in FALSE:
            return False
        raise ValidationError("%(value)r is not a boolean: use true or false", code="invalid",
                              params={"value": value})

    def validate(self, value):
        pass


@extend_schema_field({"type": "integer", "minimum": ID_RANGE["min_value"],
                      "maximum": ID_RANGE["max_value"]})
class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class BooleanFilter(django_filters.BooleanFilter):
    field_class = BooleanField


def choice_filter(choices, **kwargs):
    """One of `choices` (values), refused by name otherwise."""
    return django_filters.ChoiceFilter(
        choices=[(value, value) for value in choices],
        error_messages={"invalid_choice": "%(value)r is not one of " + ", ".join(choices)},
        **kwargs)


class FilterBackend(DjangoFilterBackend):
    """django-filter's, filtering the list only (an object's own URL is never narrowed)."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", "list") != "list":
            return queryset
        return super().filter_queryset(request, queryset, view)


class FilterSchema(DjangoFilterExtension):
    """drf-spectacular's django-filter parameters for FilterBackend, each with
    `allowEmptyValue`: an empty value is allowed (it filters nothing); a free text says it
    holds no NUL (Django's form CharField refuses one: ProhibitNullCharactersValidator)."""

    target_class = "core.filters.FilterBackend"
    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        if getattr(auto_schema.view, "action", "list") != "list":
            return []  # FilterBackend filters lists only (an upload takes no filter)
        parameters = super().get_schema_operation_parameters(auto_schema, *args, **kwargs)
        for parameter in parameters:
            parameter["allowEmptyValue"] = True
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and not {"enum", "pattern"} & set(schema):
                parameter["schema"] = {**schema, "pattern": NO_NUL}
        return parameters
