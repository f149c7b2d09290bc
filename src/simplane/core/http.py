"""HTTP conventions shared by the routers: ETags, If-Match, Location, Link and error docs."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from pydantic import AfterValidator, BaseModel, WithJsonSchema

from .errors import ERROR_CODES, AppError, FieldError, validation_error
from .paging import Page


def route_template(scope: dict[str, Any]) -> str | None:
    """The matched route's path template, e.g. /v1/things/{thing_id}; None before routing."""
    template = scope.get("simplane.route_template")
    if template is None and scope.get("route") is not None:
        # Asked by the query check and by the metrics of every request: worked out once.
        template = scope["simplane.route_template"] = _route_template(scope)
    return template


def _route_template(scope: dict[str, Any]) -> str | None:
    route = scope.get("route")
    regex, template = getattr(route, "path_regex", None), getattr(route, "path", None)
    if regex is None or template is None:
        return None
    # An included router's route knows its path without the router's prefix (/v1).
    path = scope["path"]
    for cut in (i for i, char in enumerate(path) if char == "/"):
        if regex.match(path[cut:]):
            return path[:cut] + template
    return template


_DOCUMENTING = threading.Lock()


def documented_query_parameters(app: Any) -> dict[tuple[str, str], set[str]]:
    """The query parameters the OpenAPI document names, per (method, path template).

    Building the document takes about a second; the app builds it once at start-up, and the
    lock keeps concurrent first requests (an app served without its lifespan) from each
    building it again.
    """
    known = getattr(app.state, "documented_query_parameters", None)
    if known is not None:
        return known  # type: ignore[no-any-return]
    with _DOCUMENTING:
        known = getattr(app.state, "documented_query_parameters", None)
        if known is None:
            known = {
                (method, path): {p["name"] for p in operation.get("parameters", [])
                                 if p.get("in") == "query"}
                for path, item in app.openapi().get("paths", {}).items()
                for method, operation in item.items()
            }
            app.state.documented_query_parameters = known
    return known  # type: ignore[no-any-return]


async def check_request(request: Request) -> None:
    """What every route checks first, in one dependency (each costs the request a dependency
    solve): unknown query parameters, then NUL characters. Async: set lookups and scans, no
    trip to the thread pool."""
    reject_unknown_query_parameters(request)
    await reject_nul_characters(request)


def reject_unknown_query_parameters(request: Request) -> None:
    """A query parameter the route does not document is refused (400), like an unknown body
    field: a misspelt filter must not silently widen a list."""
    if not request.scope.get("query_string"):
        return
    template = route_template(request.scope)
    allowed = documented_query_parameters(request.app).get(
        (request.method.lower(), template or ""))
    if allowed is None:
        return
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if unknown:
        raise validation_error(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(n) for n in unknown),
            [FieldError(name, "unknown query parameter") for name in unknown])


def _nul_fields(value: Any, where: str = "") -> list[str]:
    if isinstance(value, str):
        return [where or "body"] if "\x00" in value else []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    found = []
    for key, item in items:
        name = f"{where}.{key}" if where else str(key)
        if "\x00" in str(key):
            found.append(name)
        found += _nul_fields(item, name)
    return found


async def reject_nul_characters(request: Request) -> None:
    """NUL (U+0000) is refused in paths, queries and bodies (400) on both engines: PostgreSQL
    text cannot hold it, and no identifier or name needs it. The token endpoint answers in
    RFC 6749's format and treats such a client id as unknown instead."""
    scope = request.scope
    if scope.get("root_path", "") + scope["path"] in PUBLIC_PATHS:
        return
    fields = []
    if "\x00" in scope["path"]:  # path parameters are cut from the (decoded) path
        fields += [name for name, value in request.path_params.items() if "\x00" in str(value)]
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        fields += [name for name, value in request.query_params.multi_items()
                   if "\x00" in name + value]
    if request.method in ("POST", "PUT", "PATCH"):
        body = await request.body()
        if b"\\u0000" in body:
            try:
                fields += _nul_fields(json.loads(body))
            except ValueError:
                pass  # malformed JSON is the route's to refuse
        elif b"%00" in body:
            fields += [name for name, value in parse_qsl(body.decode("latin-1"),
                                                          keep_blank_values=True)
                       if "\x00" in name + value]
    if fields:
        fields = list(dict.fromkeys(fields))
        raise validation_error("NUL characters (U+0000) are not allowed: " + ", ".join(fields),
                               [FieldError(f, "contains a NUL (U+0000) character")
                                for f in fields])


def json_bytes(model: BaseModel) -> bytes:
    """The JSON FastAPI sends for a `response_model` (by alias, compact), in one pass."""
    return model.__pydantic_serializer__.to_json(model, by_alias=True)


def _etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def etag_of(model: BaseModel) -> str:
    return _etag(json_bytes(model))


def with_etag(response: Response, model: BaseModel) -> BaseModel:
    response.headers["ETag"] = etag_of(model)
    return model


def json_response(content: BaseModel | bytes, *, etag: bool = False,
                  status_code: int = 200) -> Response:
    """The response FastAPI would make of `content` for the route's `response_model`, byte for
    byte, serialised once (with `etag`, hashed from those same bytes); `content` is the model
    or its JSON already serialised. A route returning it skips FastAPI's second validation of
    a model that validated when it was built, and the trip to the thread pool that validation
    costs a sync route."""
    body = content if isinstance(content, bytes) else json_bytes(content)
    headers = {"ETag": _etag(body)} if etag else None
    return Response(body, status_code, headers, media_type="application/json")


def check_if_match(request: Request, current: BaseModel) -> None:
    """Compare If-Match with the representation read under the row lock (`FOR UPDATE`)."""
    header = request.headers.get("if-match")
    if header is None:
        return
    current_tag = etag_of(current)
    offered = [tag.strip() for tag in header.split(",")]
    if "*" in offered or current_tag in offered:
        return
    raise AppError(
        f"If-Match {header} does not match the current ETag {current_tag}",
        412,
        "etag_mismatch",
        "Precondition failed",
    )


def set_link_header(request: Request, response: Response, page: Page[Any]) -> None:
    if page.next_cursor:
        url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None


_STATUS_TEXT = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 412: "Precondition failed", 429: "Too many requests",
    500: "Internal error", 503: "Service unavailable",
}


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_response(status: int, names: list[str]) -> dict[str, Any]:
    lines = "; ".join(f"`{c}`: {ERROR_CODES[c][1]}" for c in names)
    return {
        "description": f"{_STATUS_TEXT.get(status, 'Error')}. Codes: {lines}",
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }


def problem_responses(*codes: str, authenticated: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` listing every problem code a route can answer, grouped by status."""
    all_codes = list(codes) + ["validation_error", "not_found", "rate_limited", "internal_error",
                               "service_unavailable"]
    if authenticated:
        all_codes += ["unauthorized", "forbidden"]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(all_codes):
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return {status: _problem_response(status, names)
            for status, names in sorted(by_status.items())}


# Routes that take no bearer token (and so no Idempotency-Key either).
PUBLIC_PATHS = {"/v1/oauth2/token"}
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeating a POST with the same key and body within 24 h replays the first "
                   "response (header `Idempotent-Replayed: true`); keys are per credential.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def document_conventions(schema: dict[str, Any]) -> None:
    """Add what no single route declares: bearer auth, Idempotency-Key on every POST, and the
    shared Problem schema."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
    components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    schema["security"] = [{"bearer": []}]
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if path in PUBLIC_PATHS:
                operation["security"] = []
                continue
            if method != "post":
                continue
            operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
            responses = operation.setdefault("responses", {})
            if "412" in responses:
                responses["412"]["description"] += (
                    f"; `idempotency_key_reused`: {ERROR_CODES['idempotency_key_reused'][1]}")
            else:
                responses["412"] = _problem_response(412, ["idempotency_key_reused"])


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: str) -> datetime:
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")
    return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))


# A query parameter taking exactly RFC 3339 (the API's timestamp format), not pydantic's wider
# datetime parsing (which would read `since=5` as a Unix time).
Rfc3339 = Annotated[str, AfterValidator(_rfc3339),
                    WithJsonSchema({"type": "string", "format": "date-time"})]
