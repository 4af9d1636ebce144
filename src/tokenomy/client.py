"""Drop-in clients: the official SDK, with every Messages call going through the pipeline.

``tokenomy.Anthropic(...)`` *is* an ``anthropic.Anthropic``: same arguments, same methods, the
SDK's own return types, retries and timeouts. Underneath, its HTTP transport hands each
``POST /v1/messages`` (and ``/v1/messages/count_tokens``, ``beta.messages.*``) to the pipeline
before sending and meters the response as it streams back. Everything else passes through.

The transports are thin: all policy and metering lives in :class:`tokenomy.pipeline.Pipeline`,
which both the sync and the async transport call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2

from tokenomy.pipeline import (
    CallContext,
    Pipeline,
    Prepared,
    Run,
    StreamTap,
    current_run,
    read_message,
)
from tokenomy.wiring import default_pipeline

__all__ = [
    "Anthropic",
    "AsyncAnthropic",
    "AsyncPipelineTransport",
    "PipelineTransport",
]


def _api_key(request: httpx2.Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _intercepts(request: httpx2.Request) -> bool:
    path = request.url.path.rstrip("/")
    return request.method == "POST" and path.endswith(("/v1/messages", "/v1/messages/count_tokens"))


class _Binding:
    """What both transports share: the pipeline, the client's run and its mode."""

    def __init__(
        self, pipeline: Pipeline, *, optimize: bool | None, run: Run | None, run_name: str
    ) -> None:
        self.pipeline = pipeline
        self.optimize = optimize
        self._run = run
        self._run_name = run_name

    def run(self) -> Run:
        active = current_run()
        if active is not None:
            return active
        if self._run is None:  # calls outside a run get one: one per client
            self._run = self.pipeline.start_run(self._run_name)
        return self._run

    def prepare(self, request: httpx2.Request, body: bytes) -> tuple[Prepared, httpx2.Request]:
        prepared = self.pipeline.prepare(
            CallContext(
                method=request.method,
                path=request.url.path,
                body=body,
                api_key=_api_key(request),
                optimize=self.optimize,
            ),
            run=self.run(),
        )
        headers = httpx2.Headers(request.headers)
        # We read the response as it passes; ask for it uncompressed so that we can.
        headers["accept-encoding"] = "identity"
        if prepared.add_betas:
            have = [b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip()]
            headers["anthropic-beta"] = ",".join(dict.fromkeys([*have, *prepared.add_betas]))
        headers["content-length"] = str(len(prepared.body))
        out = httpx2.Request(
            request.method,
            request.url,
            headers=headers,
            content=prepared.body,
            extensions=request.extensions,
        )
        return prepared, out

    def finish_body(self, prepared: Prepared, response: httpx2.Response, body: bytes) -> None:
        facts = read_message(response.status_code, body)
        facts.request_id = response.headers.get("request-id")
        self.pipeline.finish(prepared, status=response.status_code, facts=facts)

    def fail(self, prepared: Prepared, exc: BaseException) -> None:
        self.pipeline.finish(
            prepared, status=0, facts=read_message(0, b""), error=f"{type(exc).__name__}: {exc}"
        )


def _is_stream(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


class _TappedStream(httpx2.SyncByteStream):
    def __init__(
        self,
        inner: httpx2.SyncByteStream,
        binding: _Binding,
        prepared: Prepared,
        response: httpx2.Response,
    ) -> None:
        self._inner, self._b, self._p, self._status = inner, binding, prepared, response.status_code
        self._tap = StreamTap()
        self._tap.facts.request_id = response.headers.get("request-id")
        self._error: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                if self._tap.feed(chunk):
                    self._b.pipeline.first_content(self._p)
                yield chunk
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            raise

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            facts = self._tap.close()
            self._b.pipeline.finish(
                self._p,
                status=self._status,
                facts=facts,
                error=self._error,
                cancelled=not facts.complete and self._error is None and not facts.error_type,
            )


class _AsyncTappedStream(httpx2.AsyncByteStream):
    def __init__(
        self,
        inner: httpx2.AsyncByteStream,
        binding: _Binding,
        prepared: Prepared,
        response: httpx2.Response,
    ) -> None:
        self._inner, self._b, self._p, self._status = inner, binding, prepared, response.status_code
        self._tap = StreamTap()
        self._tap.facts.request_id = response.headers.get("request-id")
        self._error: str | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                if self._tap.feed(chunk):
                    self._b.pipeline.first_content(self._p)
                yield chunk
        except Exception as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            raise

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            facts = self._tap.close()
            self._b.pipeline.finish(
                self._p,
                status=self._status,
                facts=facts,
                error=self._error,
                cancelled=not facts.complete and self._error is None and not facts.error_type,
            )


class PipelineTransport(httpx2.BaseTransport):
    """A sync httpx2 transport that sends Messages calls through the pipeline."""

    def __init__(self, inner: httpx2.BaseTransport, binding: _Binding) -> None:
        self._inner = inner
        self._binding = binding

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if not _intercepts(request):
            return self._inner.handle_request(request)
        prepared, out = self._binding.prepare(request, request.read())
        try:
            response = self._inner.handle_request(out)
        except BaseException as exc:
            self._binding.fail(prepared, exc)
            raise
        if not prepared.metered:
            return response
        self._binding.pipeline.started(prepared)
        stream = response.stream
        assert isinstance(stream, httpx2.SyncByteStream)
        if _is_stream(response):
            tapped = _TappedStream(stream, self._binding, prepared, response)
            return httpx2.Response(
                response.status_code,
                headers=response.headers,
                stream=tapped,
                request=out,
                extensions=response.extensions,
            )
        try:
            body = b"".join(stream)
        finally:
            stream.close()
        self._binding.finish_body(prepared, response, body)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=out,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


class AsyncPipelineTransport(httpx2.AsyncBaseTransport):
    """An async httpx2 transport that sends Messages calls through the pipeline."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, binding: _Binding) -> None:
        self._inner = inner
        self._binding = binding

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not _intercepts(request):
            return await self._inner.handle_async_request(request)
        prepared, out = self._binding.prepare(request, await request.aread())
        try:
            response = await self._inner.handle_async_request(out)
        except BaseException as exc:
            self._binding.fail(prepared, exc)
            raise
        if not prepared.metered:
            return response
        self._binding.pipeline.started(prepared)
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        if _is_stream(response):
            tapped = _AsyncTappedStream(stream, self._binding, prepared, response)
            return httpx2.Response(
                response.status_code,
                headers=response.headers,
                stream=tapped,
                request=out,
                extensions=response.extensions,
            )
        try:
            body = b"".join([chunk async for chunk in stream])
        finally:
            await stream.aclose()
        self._binding.finish_body(prepared, response, body)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=out,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _binding(
    pipeline: Pipeline | None, optimize: bool | None, run: Run | None, run_name: str
) -> _Binding:
    return _Binding(pipeline or default_pipeline(), optimize=optimize, run=run, run_name=run_name)


class _Tokenomy:
    """What both clients add to the SDK's: the pipeline they send through, and their run."""

    _tokenomy: _Binding

    @property
    def tokenomy_pipeline(self) -> Pipeline:
        return self._tokenomy.pipeline

    @property
    def tokenomy_run(self) -> Run:
        """The run this client's calls go to outside a ``tokenomy.run`` block."""
        return self._tokenomy.run()


class Anthropic(_Tokenomy, anthropic.Anthropic):
    """``anthropic.Anthropic`` with tokenomy's pipeline underneath.

    Extra keyword arguments: ``optimize`` (False: meter and diagnose only, change nothing),
    ``pipeline`` (default: the process-wide one built from settings), ``run`` (the run calls
    outside a ``tokenomy.run`` block belong to; default: one per client), ``run_name``.
    """

    def __init__(
        self,
        *args: Any,
        optimize: bool | None = None,
        pipeline: Pipeline | None = None,
        run: Run | None = None,
        run_name: str = "default",
        **kwargs: Any,
    ) -> None:
        binding = _binding(pipeline, optimize, run, run_name)
        http_client: httpx2.Client | None = kwargs.pop("http_client", None)
        if http_client is None:
            http_client = anthropic.DefaultHttpxClient(
                transport=PipelineTransport(httpx2.HTTPTransport(), binding)
            )
        else:
            http_client._transport = PipelineTransport(http_client._transport, binding)
        self._tokenomy = binding
        super().__init__(*args, http_client=http_client, **kwargs)


class AsyncAnthropic(_Tokenomy, anthropic.AsyncAnthropic):
    """``anthropic.AsyncAnthropic`` with tokenomy's pipeline underneath (see :class:`Anthropic`)."""

    def __init__(
        self,
        *args: Any,
        optimize: bool | None = None,
        pipeline: Pipeline | None = None,
        run: Run | None = None,
        run_name: str = "default",
        **kwargs: Any,
    ) -> None:
        binding = _binding(pipeline, optimize, run, run_name)
        http_client: httpx2.AsyncClient | None = kwargs.pop("http_client", None)
        if http_client is None:
            http_client = anthropic.DefaultAsyncHttpxClient(
                transport=AsyncPipelineTransport(httpx2.AsyncHTTPTransport(), binding)
            )
        else:
            http_client._transport = AsyncPipelineTransport(http_client._transport, binding)
        self._tokenomy = binding
        super().__init__(*args, http_client=http_client, **kwargs)
