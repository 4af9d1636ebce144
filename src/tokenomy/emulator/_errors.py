"""The one exception of the emulator's server model: an error the real API would return.

It lives in its own module so that :mod:`validate`, :mod:`_prompt` and :mod:`server` can all
raise it without importing each other; :mod:`tokenomy.emulator.server` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping

from tokenomy.errors import TokenomyError
from tokenomy.wire.errors import error_type_for_status

__all__ = ["ApiError", "bad_request"]


class ApiError(TokenomyError):
    """An error the real API would return; the app turns it into the error envelope.

    ``status`` is the HTTP status (400, 404, 413, …), ``error_type`` the envelope's
    ``error.type`` (``invalid_request_error``, ``not_found_error``, …), ``message`` the text
    the real API sends (as close as known), ``headers`` extra response headers.
    """

    status: int
    error_type: str
    message: str
    headers: dict[str, str]

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type or error_type_for_status(status)
        self.message = message
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.error_type!r}, {self.message!r})"


def bad_request(message: str) -> ApiError:
    """A 400 ``invalid_request_error`` with ``message``."""
    return ApiError(400, message, error_type="invalid_request_error")
