"""One root exception for everything tokenomy raises on purpose.

Every message names the offending value and says what to do about it. The CLI maps
``exit_code`` to the process exit status: 2 for input the user can fix (bad JSON, an
unknown model, an unreachable database), 1 for everything else.
"""

from __future__ import annotations

__all__ = [
    "BatchError",
    "ConfigError",
    "InputError",
    "LedgerError",
    "TokenomyError",
    "UnknownModelError",
    "UpstreamError",
    "UsageError",
    "WorkloadError",
]


class TokenomyError(Exception):
    """Root of every error tokenomy raises on purpose."""

    exit_code: int = 1


class InputError(TokenomyError):
    """Input the user can fix: malformed JSON, a missing file, a bad argument."""

    exit_code = 2


class UsageError(InputError):
    """A usage object that cannot be priced: wrong types, negative counts."""


class UnknownModelError(InputError):
    """A model id or alias that is not in the model table."""

    def __init__(self, model: str, *, hint: str) -> None:
        super().__init__(f"unknown model {model!r}; {hint}")
        self.model = model


class ConfigError(InputError):
    """Settings that do not make sense: a bad value in a file, a flag or the environment."""


class LedgerError(TokenomyError):
    """The ledger database cannot be opened, migrated or written."""

    exit_code = 2


class UpstreamError(TokenomyError):
    """The upstream API could not be reached or answered with something unusable.

    ``timeout`` is True when the upstream was reached but did not answer in time.
    """

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class BatchError(TokenomyError):
    """A batch job cannot go on: an unknown job id, an invalid job file, a lost batch."""

    exit_code = 2


class WorkloadError(InputError):
    """An invalid workload file; the message names the field and the line."""
