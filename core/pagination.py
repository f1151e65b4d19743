"""The API's pages (DRF's DEFAULT_PAGINATION_CLASS). Its own module: the settings import
it while DRF starts, before core.api can be imported."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """Every list's pages: `page`, and `page_size` (50 unless asked). A page size that is
    no whole number from 1 to `max_page_size` is refused, not quietly replaced."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        value = request.query_params.get(self.page_size_query_param)
        if not value:
            return self.page_size
        if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [BAD_PAGE_SIZE]})
        return int(value)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size,
                                           default=self.page_size)
        return parameters


BAD_PAGE_SIZE = f"A whole number from 1 to {Pagination.max_page_size}."
