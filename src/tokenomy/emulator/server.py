"""The emulator's server model: what one Messages request means, independent of HTTP.

This is the seam between the emulator's two halves. The HTTP side (``app``, SSE, batches,
faults, brains) calls :class:`ServerModel` to validate a body, admit a request (its input-side
usage, decided at request start against the prompt cache), count tokens, and measure what a
brain generates. Time is passed in as ``now_s`` (the emulator's virtual clock); nothing here
reads a clock, the environment or the network.

Typical use by the app::

    model = ServerModel()
    adm = model.admit(body, scope=key_fingerprint, now_s=clock.now_s)   # may raise ApiError
    ...                                   # a fault before the response starts → adm.abort()
    adm.commit()                          # message_start sent / JSON body produced
    usage = adm.usage(output_tokens=n)    # the wire `usage` object
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tokenomy.data import builtin_table
from tokenomy.data.table import ModelInfo, ModelTable
from tokenomy.emulator._errors import ApiError, bad_request
from tokenomy.emulator._prompt import Prompt, render
from tokenomy.emulator.cache import PromptCache
from tokenomy.emulator.tokenizer import content_block_tokens, generation_of
from tokenomy.emulator.tokenizer import text_tokens as _text_tokens
from tokenomy.emulator.validate import validate_request

__all__ = ["Admission", "ApiError", "ServerModel"]

Endpoint = Literal["messages", "count_tokens", "batch_item"]


@dataclass(frozen=True)
class Admission:
    """One admitted Messages request: its input-side usage, decided at request start.

    ``input_tokens + cache_creation_5m_tokens + cache_creation_1h_tokens + cache_read_tokens``
    is the whole prompt (usage is additive, §1.9). Call :meth:`commit` when the response starts
    (its cache writes become readable, what it read is refreshed) or :meth:`abort` if it fails
    before that (nothing is written or refreshed). Both are idempotent; the first one wins.
    """

    model: ModelInfo
    model_name: str  # the model string as requested, echoed back in responses
    input_tokens: int  # uncached input (after the last cache breakpoint)
    cache_creation_5m_tokens: int
    cache_creation_1h_tokens: int
    cache_read_tokens: int
    _cache: PromptCache | None = field(default=None, repr=False, compare=False)
    _ticket: int = field(default=0, repr=False, compare=False)

    @property
    def cache_creation_tokens(self) -> int:
        """All cache writes (``cache_creation_input_tokens``)."""
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Tokens the model had to process from scratch: input + writes (for the latency model)."""
        return self.input_tokens + self.cache_creation_tokens

    @property
    def total_input_tokens(self) -> int:
        """The whole prompt: input + writes + reads."""
        return self.uncached_input_tokens + self.cache_read_tokens

    def usage(
        self,
        *,
        output_tokens: int,
        service_tier: str = "standard",
        thinking_tokens: int | None = None,
    ) -> dict[str, Any]:
        """The wire ``usage`` object exactly as the API sends it (§1.9).

        ``server_tool_use`` is absent (the emulator runs no server tools);
        ``output_tokens_details`` appears only when ``thinking_tokens`` is given.
        """
        if output_tokens < 0 or (thinking_tokens is not None and thinking_tokens < 0):
            raise ValueError(f"token counts must be ≥ 0, got {output_tokens}, {thinking_tokens}")
        if thinking_tokens is not None and thinking_tokens > output_tokens:
            raise ValueError(
                f"thinking_tokens ({thinking_tokens}) is part of output_tokens ({output_tokens}) "
                "and cannot exceed it"
            )
        usage: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_creation_5m_tokens,
                "ephemeral_1h_input_tokens": self.cache_creation_1h_tokens,
            },
            "output_tokens": output_tokens,
            "service_tier": service_tier,
        }
        if thinking_tokens is not None:
            usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
        return usage

    def commit(self) -> None:
        """The response started: this request's writes become readable. Idempotent."""
        if self._cache is not None:
            self._cache.commit(self._ticket)

    def abort(self) -> None:
        """Failed before the response started: write (and refresh) nothing. Idempotent."""
        if self._cache is not None:
            self._cache.abort(self._ticket)


class ServerModel:
    """Validation, tokenization, the prompt cache and usage of the emulated API. Thread-safe."""

    def __init__(self, *, table: ModelTable | None = None) -> None:
        self._table = table if table is not None else builtin_table()
        self._cache = PromptCache()

    @property
    def table(self) -> ModelTable:
        return self._table

    def _check(self, body: object, endpoint: Endpoint) -> tuple[ModelInfo, Prompt]:
        try:
            model = validate_request(body, endpoint=endpoint, table=self._table)
            assert isinstance(body, Mapping)
            prompt = render(body, model=model)
        except RecursionError:
            raise bad_request("request body is nested too deeply to be processed") from None
        # The long-context window needs a beta header the server model does not see: allow it.
        lc = model.long_context
        window = max(model.context_window_tokens, (lc.context_window_tokens or 0) if lc else 0)
        if prompt.total_tokens > window:
            raise bad_request(
                f"prompt is too long: {prompt.total_tokens} tokens > {window} maximum"
            )
        return model, prompt

    def validate(self, body: object, *, endpoint: Endpoint) -> None:
        """Raise :class:`ApiError` exactly as the API would for ``body`` at ``endpoint``.

        ``endpoint="batch_item"`` also rejects what batches forbid (stream, ``max_tokens: 0``,
        fast ``speed`` …). Never touches the cache.
        """
        self._check(body, endpoint)

    def admit(
        self, body: Mapping[str, Any], *, scope: str, now_s: float, batch: bool = False
    ) -> Admission:
        """Validate, tokenize, and decide cache reads/writes in ``scope`` at ``now_s``.

        ``scope`` isolates caches (an API-key fingerprint); ``batch=True`` validates with the
        batch rules and uses the same cache (deterministically; best-effort in real life).
        """
        model, prompt = self._check(body, "batch_item" if batch else "messages")
        ticket, d = self._cache.decide(prompt, model=model, scope=scope, now_s=now_s)
        return Admission(
            model=model,
            model_name=str(body["model"]),
            input_tokens=d.input_tokens,
            cache_creation_5m_tokens=d.write_5m_tokens,
            cache_creation_1h_tokens=d.write_1h_tokens,
            cache_read_tokens=d.read_tokens,
            _cache=self._cache,
            _ticket=ticket,
        )

    def count_tokens(self, body: Mapping[str, Any]) -> int:
        """``input_tokens`` for ``POST /v1/messages/count_tokens``; never touches the cache."""
        _, prompt = self._check(body, "count_tokens")
        self._cache.count_tokens_request()
        return prompt.total_tokens

    def text_tokens(self, text: str, *, model: ModelInfo) -> int:
        """Tokens of generated ``text`` (for a brain's ``output_tokens``)."""
        return _text_tokens(text, generation=generation_of(model))

    def block_tokens(self, block: Mapping[str, Any], *, model: ModelInfo) -> int:
        """Tokens of one generated content block (text, tool_use, thinking …)."""
        return content_block_tokens(block, generation=generation_of(model))

    def entries(self, *, now_s: float) -> list[dict[str, Any]]:
        """Live cache entries: model, scope, prefix_tokens, ttl, written_at_s, expires_at_s,
        readable, hits."""
        return self._cache.entries(now_s=now_s)

    def stats(self) -> dict[str, Any]:
        """Counters: requests, hits, misses, tokens read and written, …"""
        return self._cache.stats()

    def reset(self) -> None:
        """Forget every cache entry and counter."""
        self._cache.reset()
