"""Streaming requests built by the SDK once per client, then reused.

Building a request was most of what the SDKs cost us per answer: options
models, header merging, the JSON transform and httpx's request and client
layers took about a third of a web process's event loop at saturation
(BENCHMARKS.md), for a request that differs from the previous one only in its
body and its trace header. So for each client the SDK builds one request, on a
copy of the client whose transport keeps the request instead of sending it,
and what the SDK would have sent (method, URL, headers, timeout settings)
becomes that client's template. Every answer's request is the template with its
own JSON body and trace header, sent by the SDK client's own HTTP client (the
same connection pool and transport). Failures raise the SDK's own exception
types, made as the SDK makes them (`APITimeoutError`, `APIConnectionError`, and
the status errors of its `_make_status_error_from_response`), so
`errors.from_exception` maps them exactly as before.

The clients are built in `clients.py` with a fixed API key, no retries and no
custom auth: nothing the SDK does per request (key refresh, workload identity,
retries) applies to them. A changed setting gets a new client, hence a new
template.
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Callable
from typing import Any

import anyio
import httpx2

# Headers that belong to one request: its body's length and its trace.
_PER_REQUEST_HEADERS = frozenset({b"content-length", b"traceparent", b"tracestate"})

# Given an SDK client, its streaming-response manager for a request of the kind
# the template is for (the body does not matter: it is replaced).
SdkCall = Callable[[Any], Any]


class RequestTemplate:
    """What the SDK sends for one kind of request, minus the per-request headers."""

    __slots__ = ("method", "url", "headers", "extensions")

    def __init__(self, request: httpx2.Request) -> None:
        self.method = request.method
        self.url = request.url
        self.headers = [(name, value) for name, value in request.headers.raw
                        if name.lower() not in _PER_REQUEST_HEADERS]
        self.extensions = dict(request.extensions)
        timeout = self.extensions.get("timeout")
        if isinstance(timeout, dict):
            # No socket-read timeout in the transport: aiohttp re-armed its timer on
            # every packet of a streamed answer. The streaming loop applies the same
            # limit itself, with the first-token, idle and total deadlines.
            self.extensions["timeout"] = {**timeout, "read": None}

    def request(self, body: bytes, headers: dict[str, str]) -> httpx2.Request:
        return httpx2.Request(
            self.method, self.url, content=body, extensions=self.extensions,
            headers=[*self.headers, *((name.encode("latin-1"), value.encode("latin-1"))
                                      for name, value in headers.items())],
        )


class _Kept(Exception):
    """Carries the request the SDK built out of the transport that does not send it."""

    def __init__(self, request: httpx2.Request) -> None:
        super().__init__("request kept, not sent")
        self.request = request


class _KeepingTransport(httpx2.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        raise _Kept(request)


async def _build_template(client: Any, sdk_call: SdkCall) -> RequestTemplate:
    """Let the SDK build a request on a copy of `client` that keeps it unsent."""
    keeping = httpx2.AsyncClient(transport=_KeepingTransport())
    try:
        async with sdk_call(client.with_options(http_client=keeping)):
            pass
    except Exception as exc:
        # openai lets the transport's exception through; anthropic wraps it.
        seen: BaseException | None = exc
        while seen is not None and not isinstance(seen, _Kept):
            seen = seen.__cause__
        if seen is None:
            raise
        return RequestTemplate(seen.request)
    finally:
        await keeping.aclose()
    raise RuntimeError("the SDK returned a response without sending its request")


# (client, kind of request) -> template; entries go with their client.
_templates: weakref.WeakKeyDictionary[Any, dict[str, RequestTemplate]] = \
    weakref.WeakKeyDictionary()


async def template_for(client: Any, kind: str, sdk_call: SdkCall) -> RequestTemplate:
    """The template of `kind` requests of `client`, built on first use."""
    templates = _templates.setdefault(client, {})
    template = templates.get(kind)
    if template is None:
        template = templates[kind] = await _build_template(client, sdk_call)
    return template


class StreamingRequest:
    """Sends one streaming request from its client's template; on entry, the response
    with the two attributes the streaming loop reads from the SDK's streaming
    response (`headers`, `http_response`). A non-2xx answer raises the SDK's status
    error, as the SDK does."""

    __slots__ = ("_client", "_sdk", "_kind", "_sdk_call", "_body", "_headers", "http_response")

    def __init__(self, client: Any, sdk: Any, *, kind: str, sdk_call: SdkCall, body: bytes,
                 headers: dict[str, str]) -> None:
        self._client = client
        self._sdk = sdk  # the SDK's module (openai, anthropic): its exception types
        self._kind = kind
        self._sdk_call = sdk_call
        self._body = body
        self._headers = headers
        self.http_response: httpx2.Response | None = None

    @property
    def headers(self) -> httpx2.Headers:
        assert self.http_response is not None
        return self.http_response.headers

    async def __aenter__(self) -> StreamingRequest:
        client, sdk = self._client, self._sdk
        template = await template_for(client, self._kind, self._sdk_call)
        request = template.request(self._body, self._headers)
        # As the SDK's request loop with retries off: a timeout, then the other
        # failures it counts as connection errors, each raised as the SDK's own error.
        try:
            response = await client._client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise sdk.APITimeoutError(request=request) from exc
        except (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream) as exc:
            raise sdk.APIConnectionError(request=request) from exc
        if not response.is_success:
            try:
                await response.aread()
            finally:
                await response.aclose()
            raise client._make_status_error_from_response(response) from None
        self.http_response = response
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self.http_response is not None:
            await self.http_response.aclose()
