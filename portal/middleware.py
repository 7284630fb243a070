"""Cross-cutting request handling: security headers, the log-in requirement, API answers during outages."""

import logging

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware

from portal.api.exceptions import DATABASE_ERRORS, database_unavailable_response, is_api_request

logger = logging.getLogger(__name__)


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and Permissions-Policy headers to every response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Every page needs a log-in unless its view says otherwise.

    The API authenticates per request (tokens) inside DRF and answers 401 itself, so it is exempt here.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class ApiErrorMiddleware:
    """While the database is unreachable, API requests get a quick 503 with Retry-After in the API's error shape.

    Only the views' exceptions reach process_exception; one raised earlier, by another middleware, is answered by
    the handler500 in portal.api.exceptions in the same way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_api_request(request) and isinstance(exception, DATABASE_ERRORS):
            logger.warning("%s %s: database unavailable (%s); answered 503.", request.method, request.path, exception)
            return database_unavailable_response()
        return None
