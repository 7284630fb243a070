"""Page-number pagination with `?page=&per_page=`; bad values are a 400, not silently corrected.

Counts stop at COUNT_CAP (CappedPaginator): a count that scans every row of a large tenant would make each page as
slow as the whole list. The dashboard's lists use the same paginator.
"""

from django.core.paginator import InvalidPage, Page, Paginator
from django.utils.functional import cached_property
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
# Counting up to 1,001 rows reads about 0.2 ms of index; up to 10,001 (a tenant with 10,000 machines) 1.6 ms with
# every page all-visible and 3.3 ms without: the count would then be what grows with the tenant (bench/RESULTS.md).
COUNT_CAP = 1_000


class CappedPaginator(Paginator):
    """A Paginator whose count stops at COUNT_CAP: past it, `count` is the cap, `capped` is true, and pages go on
    after the counted ones for as long as there are rows (each page fetches one row more to know)."""

    count_cap = COUNT_CAP

    @cached_property
    def _counted(self) -> int:
        # SELECT COUNT(*) FROM (SELECT id … LIMIT cap + 1): at most cap + 1 rows are read, whatever the list's size,
        # in no particular order (sorting every row by the list's order would cost what counting them all does), and
        # only their ids (not the columns, joins and annotated subqueries a page shows).
        if not hasattr(self.object_list, "order_by"):
            return len(self.object_list)
        return self.object_list.order_by().values("pk")[: self.count_cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.count_cap)

    @property
    def capped(self) -> bool:
        return self._counted > self.count_cap

    def validate_number(self, number):
        if not self.capped:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise InvalidPage("That page number is not an integer") from None
        if number < 1:
            raise InvalidPage("That page number is less than 1")
        return number

    def page(self, number) -> Page:
        number = self.validate_number(number)
        if not self.capped:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if number > 1 and not rows:
            raise InvalidPage("That page contains no results")
        return CappedPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)


class CappedPage(Page):
    """A page of a capped list: whether a next page exists is known from the extra row, not from the count."""

    def __init__(self, object_list, number, paginator, *, more: bool):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def end_index(self) -> int:
        return (self.number - 1) * self.paginator.per_page + len(self.object_list)


def _release_serializer(data) -> None:
    """Lets the page's objects go as soon as the response does. A many=True serializer and its child point at each
    other (DRF binds the child to it as its parent), and that cycle held the page's rows and their output until the
    cyclic garbage collector ran: its full collections, every few dozen requests, freed tens of thousands of objects
    at once and paused that request for ~90 ms (the p95 of a 200-row page; bench/RESULTS.md)."""
    serializer = getattr(data, "serializer", None)
    child = getattr(serializer, "child", None)
    if child is not None:
        child.parent = None


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
        paginator = CappedPaginator(queryset, self.per_page)
        self.total = paginator.count
        self.capped = paginator.capped
        self.last_page = max(paginator.num_pages, 1)
        self.has_next = self.page_number < self.last_page
        if self.page_number > self.last_page and not self.capped:
            return []
        try:
            page = paginator.page(self.page_number)
        except InvalidPage:
            self.has_next = False
            return []
        self.has_next = page.has_next()
        return list(page.object_list)

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
        _release_serializer(data)
        page = self.page_number
        previous = page - 1 if self.capped else min(page - 1, self.last_page)
        meta = {"total": self.total, "page": page, "per_page": self.per_page}
        if self.capped:
            meta["total_capped"] = True
        return Response(
            {
                "data": data,
                "meta": meta,
                "links": {
                    "first": self._link(1),
                    "prev": self._link(previous) if page > 1 else None,
                    "next": self._link(page + 1) if self.has_next else None,
                    # The last page of a capped list is not known without counting every row.
                    "last": None if self.capped else self._link(self.last_page),
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
                        "total": {
                            "type": "integer",
                            "example": 42,
                            "description": f"How many items the list holds; at most {COUNT_CAP:,} (see total_capped).",
                        },
                        "total_capped": {
                            "type": "boolean",
                            "description": f"Present (true) when the list holds more than {COUNT_CAP:,} items: "
                            "`total` is then a lower bound and `links.last` is null; follow `links.next`.",
                        },
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
