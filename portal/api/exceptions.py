"""One error shape for every 4xx: {"error": {"code", "message", "details"}}.

Service errors (portal.errors.ServiceError) carry their own code and status. Unexpected exceptions are left to
Django on purpose: a bug must surface as a 500 and in the logs, not be disguised as a client error.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
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
