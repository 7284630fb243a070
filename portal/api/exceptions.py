"""One error shape for every API error: {"error": {"code", "message", "details"}}.

Service errors (portal.errors.ServiceError) carry their own code and status. Unexpected exceptions are left to
Django on purpose: a bug must surface as a 500 and in the logs, not be disguised as a client error. What Django
answers itself under /api/ (a body too large, a 500 once logged, an error raised outside DRF) goes through the
handlers at the end of this module, so the API answers in its own shape there too; an unreachable database is a
503 with Retry-After (portal.middleware.ApiErrorMiddleware answers it for the views).
"""

import sys

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.errors import ServiceError

# DRF's default codes, renamed where ours read better to a client.
CODES = {
    "throttled": "rate_limited",
    "not_authenticated": "not_authenticated",
    "authentication_failed": "authentication_failed",
    "permission_denied": "permission_denied",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "parse_error": "malformed_request",
    "unsupported_media_type": "unsupported_media_type",
    "not_acceptable": "not_acceptable",
}


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


class IdempotentReplay(Exception):
    """Raised before the handler runs when a stored response answers the request; carries that response."""

    def __init__(self, response: Response):
        super().__init__("replayed")
        self.response = response


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return CODES.get(code, code)


def api_exception_handler(exc, context):
    if isinstance(exc, IdempotentReplay):
        return exc.response
    if isinstance(exc, RequestDataTooBig):
        return Response(_too_large_body(), status=413)
    if isinstance(exc, ServiceError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "The request is not valid; see details.", details)
    else:
        response.data = error_body(_code_of(exc), str(exc.detail))
    return response


@csrf_exempt  # a JSON 404 whatever the method: the CSRF check would otherwise answer with an HTML 403
def not_found_view(request, *args, **kwargs):
    """Unknown URLs under /api/ answer in the API's error shape, never with an HTML page."""
    return JsonResponse(error_body("not_found", "No API endpoint at this address."), status=404)


# --- what Django answers itself -------------------------------------------------------------------------------

# The database is unreachable (restarting, failing over, too many connections): a client should come back shortly.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER = 5  # seconds


def is_api_request(request) -> bool:
    return request.path_info.startswith("/api/")


def database_unavailable_response() -> JsonResponse:
    body = error_body("service_unavailable", "The service is briefly unavailable; retry in a few seconds.")
    return JsonResponse(body, status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER)})


def _too_large_body() -> dict:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_body("payload_too_large", f"The request body is too large: at most {limit} bytes.", {"limit": limit})


def bad_request(request, exception):
    """handler400: a request Django refused before any view (too large, malformed headers, a suspicious host)."""
    if not is_api_request(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(_too_large_body(), status=413)
    return JsonResponse(error_body("malformed_request", "The request could not be understood."), status=400)


def permission_denied(request, exception):
    """handler403."""
    if not is_api_request(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body("permission_denied", "You do not have permission to do that."), status=403)


def page_not_found(request, exception):
    """handler404 (under /api/ the catch-all route answers first; this covers a 404 raised outside it)."""
    if not is_api_request(request):
        return defaults.page_not_found(request, exception)
    return not_found_view(request)


def server_error_answer(request) -> JsonResponse | None:
    """For handler500 (portal.views_ops.server_error), once Django has logged the exception: the API's answer under
    /api/ (a 503 when the database is unreachable), None elsewhere (the page)."""
    if not is_api_request(request):
        return None
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable_response()
    return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."), status=500)
