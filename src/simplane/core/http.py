"""HTTP conventions shared by the routers: ETags, If-Match, Location, Link and error docs."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from .errors import ERROR_CODES, AppError
from .paging import Page


def etag_of(model: BaseModel) -> str:
    digest = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:32]
    return f'"{digest}"'


def with_etag(response: Response, model: BaseModel) -> BaseModel:
    response.headers["ETag"] = etag_of(model)
    return model


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


def problem_responses(*codes: str, authenticated: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` listing every problem code a route can answer, grouped by status."""
    all_codes = list(codes) + ["validation_error", "not_found", "rate_limited", "internal_error"]
    if authenticated:
        all_codes += ["unauthorized", "forbidden"]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(all_codes):
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, names in sorted(by_status.items()):
        lines = "; ".join(f"`{c}`: {ERROR_CODES[c][1]}" for c in names)
        responses[status] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}. Codes: {lines}",
            "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
        }
    return responses
