"""The fast lane: the hottest GET routes, called without FastAPI's routing and dependency
solving when the request comes in their plain form.

A route's own function answers either way. What the lane leaves out is the framework's work
per request: matching the path against the routers in turn (twelve of them, each a list of
regular expressions), solving the dependencies through their signatures, and the request
handler and middleware FastAPI wraps around a route. In process on SQLite, a single-Thing read
took ~500-550 us through FastAPI and ~240-260 us through the lane; served (2 workers, 32
connections), its server CPU went from ~0.70 to ~0.50 ms a request (`docs/scaling.md`).

A lane takes a GET request whose path matches its route's template, and which no route before
its own would take (FastAPI's first-match order, worked out once here); it then calls the
route's parameterless dependencies itself, in FastAPI's order (the app's `check_request`,
then the route's `caller`), and the route function with its path parameters, its `request`,
and the query parameters the lane's `query` function parses. Anything else (HEAD, a query
parameter it does not parse, a value it would have to validate) it declines, and FastAPI
answers as before: every error that validation gives still comes from FastAPI. An exception the
app has a handler for (AppError, the database's OperationalError) is answered by that handler,
as Starlette would find it; any other goes on to the error middleware, as from a route.

The lane sits inside every middleware of the app (request id, logs and metrics, rate limits,
error boundary): a request it answers is logged, counted and limited like any other. It sets
the scope's `route` and `path_params` as routing would. A route in the lane returns a
`Response` itself (FastAPI's serialisation through the response model is what it skips), and
an app with dependency overrides sends everything through FastAPI, which applies them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

SERVED = Counter("simplane_fast_lane_requests_total",
                 "Requests the fast lane answered, by route (the rest went through FastAPI)",
                 ["route"])

QueryParser = Callable[[Mapping[str, str]], dict[str, Any] | None]


def no_query(query: Mapping[str, str]) -> dict[str, Any] | None:
    """The lane of a route without query parameters: takes only a request without any."""
    return {} if not query else None


@dataclass(frozen=True)
class Lane:
    """A route function to serve in the fast lane, and how it reads the query string: `query`
    returns the function's keyword arguments from the query parameters, or None to decline
    (every value it returns must be one FastAPI would have validated to the same)."""

    endpoint: Callable[..., Awaitable[Any]]
    query: QueryParser = no_query


@dataclass(frozen=True)
class _Compiled:
    lane: Lane
    route: APIRoute
    template: str
    regex: re.Pattern[str]
    shadows: tuple[re.Pattern[str], ...]  # earlier routes that would take some of its paths
    dependencies: tuple[tuple[str | None, Callable[[Request], Awaitable[Any]]], ...]
    served: Any  # SERVED's series of the route


def _segments(template: str) -> list[str | None]:
    return [None if part.startswith("{") else part for part in template.split("/")]


def _may_overlap(earlier: str, template: str) -> bool:
    """Whether some path could match both templates (`{name}` segments of `str`)."""
    a, b = _segments(earlier), _segments(template)
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _route_dependencies(path: str, dependant: Dependant) -> tuple[tuple[str | None, Any], ...]:
    calls = []
    for dependency in dependant.dependencies:
        takes_only_request = (
            dependency.request_param_name is not None and not dependency.dependencies
            and not dependency.path_params and not dependency.query_params
            and not dependency.header_params and not dependency.cookie_params
            and not dependency.body_params and dependency.response_param_name is None)
        if not takes_only_request:
            raise ValueError(f"{path}: the fast lane calls dependencies of the request "
                             f"alone; {dependency.call!r} asks for more")
        # A sync one would run in the thread pool and one with `yield` in FastAPI's exit stack.
        if not inspect.iscoroutinefunction(dependency.call):
            raise ValueError(f"{path}: the fast lane awaits its dependencies; "
                             f"{dependency.call!r} is not a coroutine function")
        calls.append((dependency.name, dependency.call))
    return tuple(calls)


def _check_parameters(path: str, dependant: Dependant, convertors: Mapping[str, Any]) -> None:
    if dependant.header_params or dependant.cookie_params or dependant.body_params:
        raise ValueError(f"{path}: the fast lane passes no headers, cookies or body")
    if (dependant.response_param_name or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name or dependant.websocket_param_name
            or dependant.http_connection_param_name):
        raise ValueError(f"{path}: the fast lane passes the request and the route's "
                         "parameters only")
    if dependant.request_param_name != "request":
        raise ValueError(f"{path}: the fast lane passes the request as `request`")
    if any(param.field_info.is_required() for param in dependant.query_params):
        raise ValueError(f"{path}: the fast lane may leave out any query parameter")
    for param in dependant.path_params:
        if convertors[param.name].regex != "[^/]+":
            raise ValueError(f"{path}: the fast lane passes path parameters as text")


class FastLane:
    """The lanes of an app, compiled against its routes once they are all included."""

    def __init__(self, app: FastAPI, lanes: Sequence[Lane]) -> None:
        contexts = [c for c in iter_route_contexts(app.routes)
                    if c.path is not None and "GET" in (c.methods or ())]
        self._lanes: list[_Compiled] = []
        for lane in lanes:
            found = [(i, c) for i, c in enumerate(contexts) if c.endpoint is lane.endpoint]
            if len(found) != 1:
                raise ValueError(f"{lane.endpoint.__name__} is not one GET route of the app")
            if not inspect.iscoroutinefunction(lane.endpoint):
                raise ValueError(f"{lane.endpoint.__name__}: the fast lane awaits its route")
            index, context = found[0]
            route = context.original_route
            assert isinstance(route, APIRoute)
            template = context.path
            # The route as included: its dependencies are the app's and routers' and its own.
            dependant = context.dependant
            dependencies = _route_dependencies(template, dependant)
            _check_parameters(template, dependant, context.param_convertors)
            shadows = tuple(c.path_regex for c in contexts[:index]
                            if _may_overlap(c.path, template))
            self._lanes.append(_Compiled(lane, route, template, context.path_regex, shadows,
                                         dependencies, SERVED.labels(template)))
        # A template without parameters is one exact path: a dictionary look-up.
        self._exact = {c.template: c for c in self._lanes if "{" not in c.template}
        self._patterns = [c for c in self._lanes if "{" in c.template]

    def find(self, path: str) -> tuple[_Compiled, dict[str, str]] | None:
        compiled = self._exact.get(path)
        if compiled is not None:
            return None if _shadowed(compiled, path) else (compiled, {})
        for compiled in self._patterns:
            match = compiled.regex.match(path)
            if match is not None and not _shadowed(compiled, path):
                return compiled, match.groupdict()
        return None


def _shadowed(compiled: _Compiled, path: str) -> bool:
    return any(shadow.match(path) for shadow in compiled.shadows)


class FastLaneMiddleware:
    """Innermost middleware: serves the lanes of `app.state.fast_lane` (see the module)."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        lanes: FastLane | None = getattr(app.state, "fast_lane", None)
        # Overridden dependencies (tests of an embedding app) are FastAPI's to apply.
        found = (lanes.find(scope["path"])
                 if lanes is not None and not app.dependency_overrides else None)
        if found is None:
            await self.app(scope, receive, send)
            return
        compiled, path_params = found
        arguments = _query_arguments(compiled.lane, scope.get("query_string", b""))
        if arguments is None:
            await self.app(scope, receive, send)
            return
        compiled.served.inc()
        scope["route"] = compiled.route
        scope["path_params"] = path_params
        scope["simplane.route_template"] = compiled.template
        request = Request(scope, receive)
        try:
            for name, call in compiled.dependencies:
                value = await call(request)
                if name is not None:
                    arguments[name] = value
            response = await compiled.lane.endpoint(request=request, **path_params, **arguments)
            if not isinstance(response, Response):
                # FastAPI would serialise it through the response model; the lane cannot.
                raise TypeError(f"{compiled.template}: a route in the fast lane returns a "
                                f"Response, not {type(response).__name__}")
        except Exception as exc:
            handler = _handler(app, exc)
            if handler is None:
                raise  # to the error middleware, as from a route
            response = await _run_handler(handler, request, exc)
        await response(scope, receive, send)


async def _run_handler(handler: Callable[..., Any], request: Request, exc: Exception) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(request, exc)
    return await run_in_threadpool(handler, request, exc)


def _handler(app: FastAPI, exc: Exception) -> Callable[[Request, Exception], Awaitable[Any]] | None:
    """The app's handler of `exc`, as Starlette's ExceptionMiddleware finds it. The handler of
    `Exception` itself is not one: Starlette calls it outermost, after every middleware."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return handler  # type: ignore[no-any-return]
    return None


def _query_arguments(lane: Lane, query_string: bytes) -> dict[str, Any] | None:
    if not query_string:
        return lane.query({})
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs):  # a repeated parameter: FastAPI's to read
        return None
    return lane.query(query)
