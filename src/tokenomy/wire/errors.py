"""The API's error envelope and status table (what the SDK maps to its exception classes)."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["ERROR_TYPE_BY_STATUS", "error_body", "error_type_for_status"]

ERROR_TYPE_BY_STATUS: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """The ``error.type`` the API sends with ``status``."""
    return ERROR_TYPE_BY_STATUS.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )


def error_body(
    status: int, message: str, *, request_id: str | None = None, error_type: str | None = None
) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}`` as the API sends it."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type or error_type_for_status(status), "message": message},
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body
