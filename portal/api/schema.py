"""OpenAPI generation: every operation documents the error shape for the statuses it can answer with."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiTypes, extend_schema_field
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "Invalid input (validation errors in `details`, bad pagination or filter values).",
    "401": "No credentials, or a token that is unknown, expired, revoked, or whose user left the organisation.",
    "403": "The role (or a read-only token) does not allow this.",
    "404": "No such object in your organisation.",
    "409": "The object's state refuses the request (e.g. an action on a machine in a transitional state), or a "
    "request with the same Idempotency-Key is still being handled.",
    "413": "The body is larger than the server accepts.",
    "415": "The body is not JSON.",
    "422": "Well-formed but refused: quota exceeded, no capacity, organisation on hold, or an Idempotency-Key "
    "reused with another body.",
    "429": "Rate limit exceeded: see the RateLimit-* and Retry-After headers.",
    "503": "Briefly unavailable (the database is restarting): retry after the Retry-After header's seconds.",
}
ERROR_EXAMPLES = {
    "400": ("invalid", "The request is not valid; see details.", {"name": ["This field is required."]}),
    "401": ("not_authenticated", "Authentication credentials were not provided.", {}),
    "403": ("permission_denied", "Your role (viewer) does not allow this.", {}),
    "404": ("not_found", "Not found.", {}),
    "409": ("conflict", "The machine is stopping; wait until it has stopped.", {}),
    "413": ("payload_too_large", "The request body is too large: at most 2621440 bytes.", {"limit": 2621440}),
    "415": ("unsupported_media_type", 'Unsupported media type "text/plain" in request.', {}),
    "422": ("quota_exceeded", "This would exceed your quota of 10 instances.", {"quota": "instances"}),
    "429": ("rate_limited", "Too many requests; try again in 42 seconds.", {}),
    "503": ("service_unavailable", "The service is briefly unavailable; retry in a few seconds.", {}),
}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "object", "additionalProperties": {}},
            {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
        ]
    }
)
class ErrorDetailsField(serializers.JSONField):
    """An object (per-field messages, or context) or, for a document with several located problems (an invalid
    stack document), a list of `{field, line, message}`."""


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable reason, e.g. `quota_exceeded`.")
    message = serializers.CharField(help_text="A sentence for humans.")
    details = ErrorDetailsField(
        help_text="Per-field messages for validation errors; context otherwise; for `invalid_document`, a list of "
        "`{field, line, message}`."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def _statuses_for(method: str, *, has_object: bool, has_body: bool) -> list[str]:
    statuses = ["400", "401", "403", "429", "503"]
    if has_object:
        statuses.append("404")
    if has_body:
        statuses += ["413", "415"]
    if method in ("POST", "PATCH", "PUT", "DELETE"):
        statuses += ["409", "422"]
    return sorted(statuses)


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (a UUID is ideal). A retry with the same key and body gets the first response "
    "back without acting again, for 24 hours; the same key with another body is a 422.",
)


class HangarAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error_ref = self.resolve_serializer(ErrorSerializer, "response").ref
        has_object = "{" in self.path
        has_body = self.method in ("POST", "PUT", "PATCH")
        for status in _statuses_for(self.method, has_object=has_object, has_body=has_body):
            if status in responses:
                continue
            code, message, details = ERROR_EXAMPLES[status]
            example = OpenApiExample(code, value={"error": {"code": code, "message": message, "details": details}})
            responses[status] = {
                "description": ERROR_DESCRIPTIONS[status],
                "content": {
                    "application/json": {
                        "schema": error_ref,
                        "examples": {code: {"value": example.value, "summary": code}},
                    }
                },
            }
        return responses


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "hgr_<id>_<secret>",
            "description": "An API token created on the dashboard's API tokens page.",
        }


class SessionCookieScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The dashboard's session (browser use; unsafe methods also need the X-CSRFToken header).",
        }
