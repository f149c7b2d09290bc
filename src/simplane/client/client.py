"""`Client` (blocking) and `AsyncClient` (asyncio): the same namespaces, over httpx."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import GeneratorType
from typing import Any, Self

import httpx

from ._core import (
    AsyncPager,
    Composite,
    Op,
    Pager,
    RetryInfo,
    _Engine,
    run_async,
    run_sync,
)
from .errors import error_from_response
from .models import Event
from .resources import (
    AccountAPI,
    Billing,
    BulkActions,
    EventFollower,
    Events,
    Groups,
    IpProfiles,
    Networks,
    SmsMessages,
    Things,
    Users,
    Webhooks,
)

DEFAULT_TIMEOUT = 30.0
_default_ssl: Any = None
_default_ssl_lock = threading.Lock()


def _verify(verify: Any) -> Any:
    """The default TLS context is built once per process: loading the CA bundle costs ~50 ms,
    which a command line pays on every run and a service on every client it creates."""
    global _default_ssl
    if verify is not True:
        return verify
    with _default_ssl_lock:
        if _default_ssl is None:
            _default_ssl = httpx.create_ssl_context()
        return _default_ssl


class _Namespaces:
    def _mount(self) -> None:
        self.things = Things(self)  # type: ignore[arg-type]
        self.groups = Groups(self)  # type: ignore[arg-type]
        self.networks = Networks(self)  # type: ignore[arg-type]
        self.ip_profiles = IpProfiles(self)  # type: ignore[arg-type]
        self.sms = SmsMessages(self)  # type: ignore[arg-type]
        self.billing = Billing(self)  # type: ignore[arg-type]
        self.bulk_actions = BulkActions(self)  # type: ignore[arg-type]
        self.webhooks = Webhooks(self)  # type: ignore[arg-type]
        self.events = Events(self)  # type: ignore[arg-type]
        self.account = AccountAPI(self)  # type: ignore[arg-type]
        self.users = Users(self)  # type: ignore[arg-type]


def _engine(base_url: str | None, client_id: str | None, client_secret: str | None,
            kwargs: dict[str, Any]) -> _Engine:
    return _Engine(base_url, client_id, client_secret,
                   access_token=kwargs.pop("access_token", None),
                   max_retries=kwargs.pop("max_retries", 3),
                   max_retry_wait=kwargs.pop("max_retry_wait", 60.0),
                   auto_idempotency_keys=kwargs.pop("auto_idempotency_keys", True),
                   token_refresh_margin=kwargs.pop("token_refresh_margin", 60.0),
                   on_retry=kwargs.pop("on_retry", None),
                   clock=kwargs.pop("clock", time.monotonic),
                   user_agent=kwargs.pop("user_agent", None),
                   token_store=kwargs.pop("token_store", None))


class Client(_Namespaces):
    """A blocking client.

    `Client(base_url, client_id, client_secret)` (or SIMPLANE_URL, SIMPLANE_CLIENT_ID,
    SIMPLANE_CLIENT_SECRET). Options: `timeout`, `max_retries` (429/503 and failed
    connections, default 3), `max_retry_wait` (a longer Retry-After is not waited for),
    `auto_idempotency_keys` (default True: each POST carries a fresh key, reused on its retries;
    without one a POST is never repeated), `token_refresh_margin` (seconds before expiry),
    `on_retry(RetryInfo)`, `transport` or `http_client` (an httpx.Client of your own),
    `token_store` (keeps the access token between processes, e.g. `config.TokenFile`),
    `access_token` (a fixed token instead of client credentials), `verify` (TLS: a CA bundle
    path or an ssl.SSLContext for a private CA).
    """

    def __init__(self, base_url: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None,
                 http_client: httpx.Client | None = None, verify: Any = True,
                 **options: Any) -> None:
        self._engine = _engine(base_url, client_id, client_secret, options)
        if options:
            raise TypeError(f"unexpected options: {', '.join(sorted(options))}")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport,
                                                 verify=_verify(verify), follow_redirects=False)
        self._token_lock = threading.Lock()
        self._mount()

    @classmethod
    def from_profile(cls, profile: str | None = None, **options: Any) -> Client:
        """A client for a profile saved by `simplane-cli login`."""
        from .config import load_profile

        saved = load_profile(profile)
        return cls(saved.base_url, saved.client_id, saved.client_secret, **options)

    @property
    def base_url(self) -> str:
        return self._engine.base_url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def me(self) -> Any:
        return self.account.me()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, headers: dict[str, str] | None = None,
                idempotency_key: str | None = None) -> httpx.Response:
        """Any request, with the client's tokens, retries and errors; the raw response."""
        return self._call(Op(method.upper(), path, params=params, json=json,
                             headers=headers or {}, result="response",
                             expect=frozenset(range(300, 400)), idempotency_key=idempotency_key))

    # machinery

    def _do(self, work: Op | Composite[Any]) -> Any:
        if isinstance(work, GeneratorType):
            return run_sync(work, self._call)
        return self._call(work)  # type: ignore[arg-type]

    def _pager(self, make_op: Callable[[str | None], Op], cursor: str | None) -> Pager[Any]:
        return Pager(self._call, make_op, cursor)

    def _follow(self, follower: EventFollower, poll_interval: float) -> Iterator[Event]:
        while True:
            fresh, more = follower.accept(self._call(follower.op()))
            yield from fresh
            if not more:
                time.sleep(poll_interval)

    def _token(self) -> str:
        engine = self._engine
        token = engine.current_token()
        if token is not None:
            return token
        with self._token_lock:
            token = engine.current_token()
            if token is None:
                response = self._send(engine.token_op(), None)
                if response.status_code != 200:
                    raise error_from_response(response)
                token = engine.store_token(response)
            return token

    def _call(self, op: Op) -> Any:
        return self._engine.finish(op, self._send(op, self._engine.idempotency_key(op)))

    def _send(self, op: Op, key: str | None) -> httpx.Response:
        engine = self._engine
        attempt, renewed = 0, False
        while True:
            token = self._token() if op.auth else None
            request = engine.build(self._http, op, token, key)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                wait = engine.retry_wait(op, key, attempt, None, exc)
                if wait is None:
                    raise engine.connection_error(request, exc) from exc
                engine.notify_retry(request, attempt, wait, None, exc)
                time.sleep(wait)
                attempt += 1
                continue
            if response.status_code == 401 and token is not None and not renewed:
                # Revoked or expired early (e.g. the user was disabled and enabled): one new
                # token, one more try.
                renewed = engine.forget_token(token)
                if renewed:
                    continue
            wait = engine.retry_wait(op, key, attempt, response, None)
            if wait is None:
                return response
            engine.notify_retry(request, attempt, wait, response, None)
            time.sleep(wait)
            attempt += 1


class AsyncClient(_Namespaces):
    """The asyncio twin of `Client`: the same namespaces and options; calls are awaited,
    lists are iterated with `async for`. Use `transport=httpx.ASGITransport(app=...)` to talk
    to an ASGI app in-process."""

    def __init__(self, base_url: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None,
                 http_client: httpx.AsyncClient | None = None, verify: Any = True,
                 **options: Any) -> None:
        self._engine = _engine(base_url, client_id, client_secret, options)
        if options:
            raise TypeError(f"unexpected options: {', '.join(sorted(options))}")
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport,
                                                      verify=_verify(verify), follow_redirects=False)
        self._token_lock: asyncio.Lock | None = None
        self._mount()

    @classmethod
    def from_profile(cls, profile: str | None = None, **options: Any) -> AsyncClient:
        from .config import load_profile

        saved = load_profile(profile)
        return cls(saved.base_url, saved.client_id, saved.client_secret, **options)

    @property
    def base_url(self) -> str:
        return self._engine.base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def me(self) -> Any:
        return await self.account.me()

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None, headers: dict[str, str] | None = None,
                      idempotency_key: str | None = None) -> httpx.Response:
        return await self._call(Op(method.upper(), path, params=params, json=json,
                                   headers=headers or {}, result="response",
                                   expect=frozenset(range(300, 400)),
                                   idempotency_key=idempotency_key))

    # machinery

    def _do(self, work: Op | Composite[Any]) -> Any:
        if isinstance(work, GeneratorType):
            return run_async(work, self._call)
        return self._call(work)  # type: ignore[arg-type]

    def _pager(self, make_op: Callable[[str | None], Op],
               cursor: str | None) -> AsyncPager[Any]:
        return AsyncPager(self._call, make_op, cursor)

    async def _follow(self, follower: EventFollower,
                      poll_interval: float) -> AsyncIterator[Event]:
        while True:
            fresh, more = follower.accept(await self._call(follower.op()))
            for event in fresh:
                yield event
            if not more:
                await asyncio.sleep(poll_interval)

    async def _token(self) -> str:
        engine = self._engine
        token = engine.current_token()
        if token is not None:
            return token
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            token = engine.current_token()
            if token is None:
                response = await self._send(engine.token_op(), None)
                if response.status_code != 200:
                    raise error_from_response(response)
                token = engine.store_token(response)
            return token

    async def _call(self, op: Op) -> Any:
        return self._engine.finish(op, await self._send(op, self._engine.idempotency_key(op)))

    async def _send(self, op: Op, key: str | None) -> httpx.Response:
        engine = self._engine
        attempt, renewed = 0, False
        while True:
            token = await self._token() if op.auth else None
            request = engine.build(self._http, op, token, key)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                wait = engine.retry_wait(op, key, attempt, None, exc)
                if wait is None:
                    raise engine.connection_error(request, exc) from exc
                engine.notify_retry(request, attempt, wait, None, exc)
                await asyncio.sleep(wait)
                attempt += 1
                continue
            if response.status_code == 401 and token is not None and not renewed:
                renewed = engine.forget_token(token)
                if renewed:
                    continue
            wait = engine.retry_wait(op, key, attempt, response, None)
            if wait is None:
                return response
            engine.notify_retry(request, attempt, wait, response, None)
            await asyncio.sleep(wait)
            attempt += 1


__all__ = ["AsyncClient", "Client", "RetryInfo"]
