"""The machinery shared by `Client` and `AsyncClient`.

Resource methods are written once, without I/O: a simple call returns an `Op` (one HTTP request
and how to read its answer); a composite call (look up then read, read then update with If-Match,
poll until done) is a generator that yields `Op`s and `Sleep`s and receives their results. The
synchronous client runs them with httpx.Client and time.sleep, the asynchronous one with
httpx.AsyncClient and asyncio.sleep; retries, tokens and errors live in `_Engine`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from .errors import (
    APIConnectionError,
    SimplaneError,
    error_from_response,
    parse_retry_after,
)
from .models import Page, Resource

T = TypeVar("T")

# A 429 or 503 is retried; so is a request whose connection failed. POSTs only with a key.
RETRY_STATUSES = frozenset({429, 503})
# PATCH/PUT/DELETE in this API set absolute values, so repeating one is harmless.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


def seg(value: str) -> str:
    """One path segment: ids are opaque, so never let one change the path."""
    return quote(str(value), safe="")


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple, set, frozenset)):
            value = [str(v) for v in value]
            if not value:
                continue
        elif hasattr(value, "isoformat"):
            value = _rfc3339(value)
        out[key] = value
    return out


def _rfc3339(value: Any) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host, parsed.port or default


def clean_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Drops None values: every optional body field of the API is 'leave unchanged/default'."""
    return {k: v for k, v in body.items() if v is not None}


@dataclass
class Op:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    model: Any = None  # a pydantic model class or a type TypeAdapter understands
    result: str = "model"  # "model" | "response" | "text" | "none"
    expect: frozenset[int] = frozenset()  # non-2xx statuses that are answers, e.g. 302
    auth: bool = True
    idempotency_key: str | None = None  # POST: None means "generate one" when enabled
    retry_safe: bool | None = None  # override: may this request be repeated?


@dataclass
class Sleep:
    seconds: float


@dataclass(frozen=True)
class RetryInfo:
    """Handed to `on_retry` before the client waits and repeats a request."""

    method: str
    url: str
    attempt: int  # 1 for the first repetition
    wait: float
    status: int | None  # None when the connection failed
    reason: str


Composite = Generator[Any, Any, T]


def decode(op: Op, response: httpx.Response) -> Any:
    if op.result == "response":
        return response
    if op.result == "text":
        return response.text
    if op.result == "none" or response.status_code == 204 or op.model is None:
        return None
    payload = response.json()
    if not isinstance(op.model, type) and callable(op.model) and not hasattr(op.model, "__origin__"):
        obj = op.model(payload)
    elif isinstance(op.model, type) and issubclass(op.model, BaseModel):
        obj = op.model.model_validate(payload)
    else:
        obj = TypeAdapter(op.model).validate_python(payload)
    if isinstance(obj, Resource):
        obj._etag = response.headers.get("etag")
    return obj


class TokenStore(Protocol):
    """Keeps an access token between processes (e.g. a command line run after run)."""

    def load(self) -> tuple[str, float] | None:
        """(token, expiry as Unix time), or None."""

    def save(self, token: str, expires_at: float) -> None: ...

    def clear(self, token: str) -> None:
        """Forget `token` if it is the one kept."""


@dataclass
class _Token:
    value: str
    refresh_at: float  # on the engine's clock


class _Engine:
    """Configuration and the decisions both clients share: headers, retries, tokens, errors."""

    def __init__(self, base_url: str | None, client_id: str | None, client_secret: str | None, *,
                 access_token: str | None, max_retries: int, max_retry_wait: float,
                 auto_idempotency_keys: bool, token_refresh_margin: float,
                 on_retry: Callable[[RetryInfo], None] | None,
                 clock: Callable[[], float], user_agent: str | None,
                 token_store: TokenStore | None = None) -> None:
        import os

        base_url = base_url or os.environ.get("SIMPLANE_URL")
        if not base_url:
            raise SimplaneError("no base_url given (nor SIMPLANE_URL set)")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id or os.environ.get("SIMPLANE_CLIENT_ID")
        self.client_secret = client_secret or os.environ.get("SIMPLANE_CLIENT_SECRET")
        if access_token is None and not (self.client_id and self.client_secret):
            raise SimplaneError("give client_id and client_secret (or SIMPLANE_CLIENT_ID and "
                                "SIMPLANE_CLIENT_SECRET), or an access_token")
        self.static_token = access_token
        self.max_retries = max(0, max_retries)
        self.max_retry_wait = max_retry_wait
        self.auto_idempotency_keys = auto_idempotency_keys
        self.token_refresh_margin = token_refresh_margin
        self.on_retry = on_retry
        self.clock = clock
        from . import __version__

        self.user_agent = user_agent or f"simplane-client/{__version__}"
        self.token: _Token | None = None
        self.token_store = token_store

    # tokens

    def token_op(self) -> Op:
        basic = httpx.BasicAuth(quote(self.client_id or "", safe=""),
                                quote(self.client_secret or "", safe=""))
        header = basic._auth_header
        return Op("POST", "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                  headers={"Authorization": header}, auth=False, retry_safe=True)

    def current_token(self) -> str | None:
        if self.static_token is not None:
            return self.static_token
        if self.token is None and self.token_store is not None:
            kept = self.token_store.load()
            if kept is not None:
                remaining = kept[1] - time.time()
                if remaining > self.token_refresh_margin:
                    self.token = _Token(kept[0], self.clock() + remaining
                                        - self.token_refresh_margin)
        if self.token is not None and self.clock() < self.token.refresh_at:
            return self.token.value
        return None

    def store_token(self, response: httpx.Response) -> str:
        body = response.json()
        expires_in = float(body.get("expires_in") or 3600)
        # Refresh shortly before expiry: never later than half-way through a short lifetime.
        margin = min(self.token_refresh_margin, expires_in / 2)
        self.token = _Token(body["access_token"], self.clock() + expires_in - margin)
        if self.token_store is not None:
            self.token_store.save(self.token.value, time.time() + expires_in)
        return self.token.value

    def forget_token(self, value: str) -> bool:
        """After a 401: drop the token if it is still the current one. False: cannot renew."""
        if self.static_token is not None:
            return False
        if self.token is not None and self.token.value == value:
            self.token = None
        if self.token_store is not None:
            self.token_store.clear(value)
        return True

    # requests

    def idempotency_key(self, op: Op) -> str | None:
        if op.method != "POST" or not op.auth:
            return None
        if op.idempotency_key is not None:
            return op.idempotency_key or None
        return f"simplane-client-{uuid.uuid4()}" if self.auto_idempotency_keys else None

    def build(self, http: httpx.Client | httpx.AsyncClient, op: Op, token: str | None,
              key: str | None) -> httpx.Request:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json", **op.headers}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key is not None:
            headers["Idempotency-Key"] = key
        if op.path.startswith(("http://", "https://")):
            # An absolute Location (lookup, current report) is followed only on our own origin:
            # the bearer token must never travel to another host.
            url = op.path
            if _origin(url) != _origin(self.base_url):
                raise SimplaneError(f"refusing to send credentials to {url}: not on "
                                    f"{self.base_url}")
        else:
            url = self.base_url + op.path
        return http.build_request(op.method, url, params=clean_params(op.params) or None,
                                  json=op.json, data=op.data, headers=headers)

    def may_repeat(self, op: Op, key: str | None) -> bool:
        if op.retry_safe is not None:
            return op.retry_safe
        return op.method in IDEMPOTENT_METHODS or key is not None

    def retry_wait(self, op: Op, key: str | None, attempt: int,
                   response: httpx.Response | None, error: Exception | None) -> float | None:
        """Seconds to wait before repeating, or None: do not repeat."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in RETRY_STATUSES or not self.may_repeat(op, key):
                return None
            wait = parse_retry_after(response.headers.get("retry-after"))
            if wait is None:
                wait = min(8.0, 0.5 * 2 ** attempt)
            return wait if wait <= self.max_retry_wait else None
        # A failed connect never reached the server: any request may be repeated.
        if isinstance(error, httpx.ConnectError) or self.may_repeat(op, key):
            return min(8.0, 0.25 * 2 ** attempt)
        return None

    def notify_retry(self, request: httpx.Request, attempt: int, wait: float,
                     response: httpx.Response | None, error: Exception | None) -> None:
        if self.on_retry is None:
            return
        if response is not None:
            reason = f"HTTP {response.status_code}"
        else:
            reason = f"{type(error).__name__}: {error}"
        self.on_retry(RetryInfo(request.method, str(request.url), attempt + 1, wait,
                                response.status_code if response is not None else None, reason))

    def finish(self, op: Op, response: httpx.Response) -> Any:
        status = response.status_code
        if status in op.expect or 200 <= status < 300:
            return decode(op, response)
        raise error_from_response(response)

    @staticmethod
    def connection_error(request: httpx.Request, error: Exception) -> APIConnectionError:
        return APIConnectionError(f"{request.method} {request.url}: {type(error).__name__}: "
                                  f"{error or 'connection failed'}")


async def run_async(gen: Composite[T], call: Callable[[Op], Any]) -> T:
    import asyncio

    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = gen.throw(error) if error is not None else gen.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        error = None
        try:
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                value = None
            else:
                value = await call(step)
        except BaseException as exc:  # noqa: BLE001 - handed to the generator, like run_sync
            error = exc


def run_sync(gen: Composite[T], call: Callable[[Op], Any]) -> T:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = gen.throw(error) if error is not None else gen.send(value)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        error = None
        try:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                value = None
            else:
                value = call(step)
        except BaseException as exc:  # noqa: BLE001 - the generator may handle it (retry on 412)
            error = exc


PageOp = Callable[[str | None], Op]


class Pager(Generic[T]):
    """Iterates every item of a list, following `next_cursor` page by page (lazily)."""

    def __init__(self, call: Callable[[Op], Page[T]], make_op: PageOp, cursor: str | None) -> None:
        self._call = call
        self._make_op = make_op
        self._cursor = cursor

    def first_page(self) -> Page[T]:
        return self._call(self._make_op(self._cursor))

    def pages(self) -> Iterator[Page[T]]:
        cursor = self._cursor
        while True:
            page = self._call(self._make_op(cursor))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.items

    def to_list(self) -> list[T]:
        return list(self)


class AsyncPager(Generic[T]):
    """`async for item in pager` follows `next_cursor`; `await pager.first_page()` reads one."""

    def __init__(self, call: Callable[[Op], Any], make_op: PageOp, cursor: str | None) -> None:
        self._call = call
        self._make_op = make_op
        self._cursor = cursor

    async def first_page(self) -> Page[T]:
        return await self._call(self._make_op(self._cursor))  # type: ignore[no-any-return]

    async def pages(self) -> AsyncIterator[Page[T]]:
        cursor = self._cursor
        while True:
            page = await self._call(self._make_op(cursor))
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def to_list(self) -> list[T]:
        return [item async for item in self]

