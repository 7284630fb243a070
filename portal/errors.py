"""Errors raised by services; each carries a stable code and the HTTP status the API answers with.

The dashboard shows `message` as a form error or flash message; the API renders
{"error": {"code", "message", "details"}} with `status`.
"""


class ServiceError(Exception):
    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class InvalidRequest(ServiceError):
    code = "invalid"
    status = 400


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403


class Conflict(ServiceError):
    """The object is in a state that refuses the request (e.g. a transitional instance)."""

    code = "conflict"
    status = 409


class Unprocessable(ServiceError):
    """The request is well-formed but cannot be carried out (quota, capacity, billing hold)."""

    code = "unprocessable"
    status = 422
