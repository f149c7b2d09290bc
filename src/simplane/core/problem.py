"""Rendering problem+json outside FastAPI's exception handlers (in ASGI middleware)."""

from __future__ import annotations

import json

from .errors import AppError

PROBLEM_JSON = "application/problem+json"


def problem_bytes(error: AppError) -> bytes:
    return json.dumps(error.body()).encode()


async def send_problem(send, error: AppError, extra_headers: dict[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
    body = problem_bytes(error)
    headers = {"content-type": PROBLEM_JSON, "content-length": str(len(body)),
               **error.headers, **(extra_headers or {})}
    await send({
        "type": "http.response.start",
        "status": error.status,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    })
    await send({"type": "http.response.body", "body": body})
