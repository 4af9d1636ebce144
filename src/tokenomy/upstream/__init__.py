"""Upstream: the only code that talks to the Anthropic API (real or emulated)."""

from tokenomy.upstream.aio import AiohttpUpstream
from tokenomy.upstream.http import HttpUpstream, RetryPolicy, is_local_url, retry_after_s
from tokenomy.upstream.lean import LeanUpstream

__all__ = [
    "AiohttpUpstream",
    "HttpUpstream",
    "LeanUpstream",
    "RetryPolicy",
    "is_local_url",
    "retry_after_s",
]
