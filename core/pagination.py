"""The API's pages (DRF's DEFAULT_PAGINATION_CLASS) and the web pages' paginator. Its own
module: the settings import it while DRF starts, before core.api can be imported.

A list of a million images cannot be counted on each request (a `COUNT` over what the
caller may see was nearly all of a request's time), nor paged with `OFFSET` (a deep page
reads every row before it). So:

- The API pages by cursor (keyset): a page is the rows that follow, in the list's order,
  the last row of the page before. `next` and `previous` carry an opaque `cursor` that
  holds that row's ordering values; the query asks for the rows past them, which an index
  on the ordering finds directly, at any depth. There is no `count`.
- The web pages keep page numbers but count at most a few pages past the one shown
  (`CappedPaginator`): "Page 3 of 13+".
"""

import base64
import binascii
import json
import operator
import re
from functools import reduce
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import F, Q, prefetch_related_objects
from django.utils.functional import cached_property
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from .errors import NO_SUCH_ROW


class Pagination(BasePagination):
    """Every list's pages: `cursor` (from `next` or `previous`), and `page_size` (50 unless
    asked; an empty `page_size=` is as if left out, and the schema says so with
    `allowEmptyValue`, as of the filters). A page size that is no whole number from 1 to
    `max_page_size` is refused, not quietly replaced (400); so is a cursor of the wrong shape
    (not URL-safe base64, the schema's `pattern`, which the empty text fits: the first page).
    A cursor of the right shape that this list did not give names no page: 404 naming
    `cursor`, as an id naming no row (core.api.exception_handler), and as DRF's page numbers
    answer a page that does not exist."""

    page_size = 50
    page_size_query_param = "page_size"
    cursor_query_param = "cursor"
    max_page_size = 500

    def get_page_size(self, request):
        value = request.query_params.get(self.page_size_query_param)
        if not value:
            return self.page_size
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [BAD_PAGE_SIZE]})
        return int(value)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.get_page_size(request)
        keys = ordering_keys(queryset)
        queryset = queryset.annotate(**{name: F(path) for name, path, _ in keys})
        values, backwards = self.decode_cursor(request, queryset, keys)
        order = [(name, descending != backwards) for name, _, descending in keys]
        if values is not None:
            queryset = queryset.filter(past(order, values))
        queryset = queryset.order_by(*[f"-{name}" if desc else name for name, desc in order])
        # The row past the page only says whether there is more: the prefetches (a job's
        # images and LoRAs) are for the page's own rows.
        prefetches = queryset._prefetch_related_lookups
        rows = list(queryset.prefetch_related(None)[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        prefetch_related_objects(rows, *prefetches)
        if backwards:
            rows.reverse()
        first = [row_values(rows[0], keys)] if rows else []
        last = [row_values(rows[-1], keys)] if rows else []
        if backwards:  # the rows before the cursor: the page after them is where we came from
            self.next_cursor = (last[0], False) if last else None
            self.previous_cursor = (first[0], True) if more and first else None
        else:
            self.next_cursor = (last[0], False) if more and last else None
            self.previous_cursor = (first[0], True) if values is not None and first else None
        return rows

    def decode_cursor(self, request, queryset, keys):
        """(ordering values, backwards) from `cursor`, or (None, False) on the first page."""
        text = request.query_params.get(self.cursor_query_param)
        if not text:
            return None, False
        if not re.fullmatch(CURSOR_PATTERN, text):
            raise ValidationError({self.cursor_query_param: [BAD_CURSOR]})
        try:
            padded = text + "=" * (-len(text) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            raw, backwards = data["v"], data["b"]
            if not isinstance(raw, list) or len(raw) != len(keys) or not isinstance(backwards,
                                                                                   bool):
                raise ValueError
            fields = [queryset.query.annotations[name].output_field for name, _, _ in keys]
            values = [None if value is None else field.to_python(value)
                      for field, value in zip(fields, raw, strict=True)]
        except (ValueError, TypeError, KeyError, binascii.Error, DjangoValidationError) as exc:
            raise no_such_cursor() from exc
        if any(value is None for value in values):
            raise no_such_cursor()
        return values, backwards

    def link(self, cursor):
        if cursor is None:
            return None
        token = encode_cursor(*cursor)
        url = self.request.build_absolute_uri()
        scheme, netloc, path, query, fragment = urlsplit(url)
        params = parse_qs(query, keep_blank_values=True)
        params[self.cursor_query_param] = [token]
        return urlunsplit((scheme, netloc, path, urlencode(params, doseq=True), fragment))

    def get_paginated_response(self, data):
        return Response({"next": self.link(self.next_cursor),
                         "previous": self.link(self.previous_cursor), "results": data})

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {**link, "example": "http://api.example.org/accounts/?cursor=eyJ2Ijo"},
                "previous": {**link, "example": None},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.cursor_query_param, "required": False, "in": "query",
             "description": "Where the page starts: the `cursor` of a `next` or `previous` "
                            "link (opaque; leave it out for the first page).",
             "schema": {"type": "string", "pattern": f"^{CURSOR_PATTERN}$"}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"Number of results to return per page ({self.page_size} when "
                            "left out or empty).",
             "allowEmptyValue": True,  # get_page_size: an empty value is as if absent
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size,
                        "default": self.page_size}},
        ]


def encode_cursor(values, backwards=False):
    """The `cursor` of a place in a list: the ordering values of a row, and whether the page
    is the rows before it (a `previous` link) or after it."""
    data = json.dumps({"v": values, "b": backwards}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def ordering_keys(queryset):
    """[(annotation name, field path, descending)] of the queryset's order, its primary key
    last when the order does not end with it (so that the order is total)."""
    order = list(queryset.query.order_by or queryset.model._meta.ordering)
    pk = queryset.model._meta.pk.name
    if not any(item.lstrip("-") in ("pk", pk) for item in order):
        order.append("-pk" if order and order[-1].startswith("-") else "pk")
    keys = []
    for number, item in enumerate(order):
        if not isinstance(item, str) or item.lstrip("-") == "?":
            raise TypeError(f"Cursor pages need field names in the order, not {item!r}")
        path = item.lstrip("-")
        keys.append((f"_cursor_{number}", path, item.startswith("-")))
    return keys


def past(order, values):
    """The rows after `values` in `order` [(annotation, descending)]: a < x, or a = x and
    b < y, ... with the first key's bound repeated alone, so that an index on the order
    starts its scan at the cursor instead of filtering from the top."""
    def beyond(name, descending, value):
        return Q(**{f"{name}__{'lt' if descending else 'gt'}": value})

    after = reduce(operator.or_, (
        Q(**{order[i][0]: values[i] for i in range(number)}) & beyond(name, desc, values[number])
        for number, (name, desc) in enumerate(order)))
    (first, first_desc), first_value = order[0], values[0]
    bound = Q(**{f"{first}__{'lte' if first_desc else 'gte'}": first_value})
    return bound & after


def row_values(row, keys):
    return [getattr(row, name) for name, _, _ in keys]


BAD_PAGE_SIZE = f"A whole number from 1 to {Pagination.max_page_size}."
CURSOR_PATTERN = "[A-Za-z0-9_-]*"  # URL-safe base64 without padding (encode_cursor)
BAD_CURSOR = "Not a cursor: follow the `next` or `previous` link as it is."
NO_SUCH_CURSOR = "Not a cursor of this list: follow the `next` or `previous` link as it is."


def no_such_cursor():
    return ValidationError({Pagination.cursor_query_param: [NO_SUCH_CURSOR]}, code=NO_SUCH_ROW)


class CappedPaginator(Paginator):
    """Django's Paginator for the web pages, but the count stops `ahead` pages past the
    page asked for: "Page 3 of 13+" rather than a COUNT of every row on each request
    (`capped` says whether rows were left uncounted). Same one query as the count."""

    def __init__(self, object_list, per_page, ahead=10, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.ahead = ahead
        self.limit = (1 + ahead) * per_page
        self.capped = False

    def get_page(self, number):
        try:
            asked = max(int(number), 1)
        except (TypeError, ValueError):
            asked = 1
        self.limit = (asked + self.ahead) * self.per_page
        return super().get_page(number)

    @cached_property
    def count(self):
        rows = self.object_list
        if hasattr(rows, "values"):  # a queryset: count ids, without the page's annotations
            rows = rows.order_by().values("pk")
        counted = rows[: self.limit + 1].count()
        self.capped = counted > self.limit
        return min(counted, self.limit)
