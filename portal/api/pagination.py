"""Page-number pagination with `?page=&per_page=`; bad values are a 400, not silently corrected."""

from django.core.paginator import InvalidPage, Paginator
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200


def _positive_int(request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"Must be a whole number, not {raw[:40]!r}."]}) from None
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum else "at least 1"
        raise ValidationError({name: [f"Must be {bound}."]})
    return value


class PagePagination(pagination.BasePagination):
    """{"data": [...], "meta": {"total", "page", "per_page"}, "links": {"first", "prev", "next", "last"}}.

    A page past the last one is an empty `data` list (its `meta.total` still tells the truth), as clients that
    walk `links.next` never ask for one and a list that shrank between two requests should not be an error.
    """

    page_query_param = "page"
    per_page_query_param = "per_page"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.per_page = _positive_int(request, self.per_page_query_param, DEFAULT_PER_PAGE, MAX_PER_PAGE)
        self.page_number = _positive_int(request, self.page_query_param, 1)
        paginator = Paginator(queryset, self.per_page)
        self.total = paginator.count
        self.last_page = max(paginator.num_pages, 1)
        if self.page_number > self.last_page:
            return []
        try:
            return list(paginator.page(self.page_number).object_list)
        except InvalidPage:
            return []

    def _link(self, page: int | None) -> str | None:
        if page is None:
            return None
        url = self.request.build_absolute_uri()
        if page == 1:
            return replace_query_param(
                remove_query_param(url, self.page_query_param), self.per_page_query_param, self.per_page
            )
        return replace_query_param(
            replace_query_param(url, self.page_query_param, page), self.per_page_query_param, self.per_page
        )

    def get_paginated_response(self, data):
        page = self.page_number
        return Response(
            {
                "data": data,
                "meta": {"total": self.total, "page": page, "per_page": self.per_page},
                "links": {
                    "first": self._link(1),
                    "prev": self._link(min(page - 1, self.last_page)) if page > 1 else None,
                    "next": self._link(page + 1) if page < self.last_page else None,
                    "last": self._link(self.last_page),
                },
            }
        )

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["data", "meta", "links"],
            "properties": {
                "data": schema,
                "meta": {
                    "type": "object",
                    "required": ["total", "page", "per_page"],
                    "properties": {
                        "total": {"type": "integer", "example": 42},
                        "page": {"type": "integer", "example": 1},
                        "per_page": {"type": "integer", "example": DEFAULT_PER_PAGE},
                    },
                },
                "links": {
                    "type": "object",
                    "required": ["first", "prev", "next", "last"],
                    "properties": {"first": link, "prev": link, "next": link, "last": link},
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.per_page_query_param,
                "required": False,
                "in": "query",
                "description": f"Items per page (default {DEFAULT_PER_PAGE}, at most {MAX_PER_PAGE}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
            },
        ]
