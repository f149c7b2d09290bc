"""Exceptions: every API refusal is an `APIError` subclass chosen by status (and code).

`APIError` carries what the server's problem+json said: `status`, `code` (stable, machine
readable), `title`, `detail` (a sentence naming the offending value), `errors` (one entry per
bad field) and the `request_id` that names the request in the server's logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class SimplaneError(Exception):
    """Base of every exception this library raises."""


class APIConnectionError(SimplaneError):
    """The server could not be reached, or the connection broke before an answer arrived."""


class WaitTimeoutError(SimplaneError, TimeoutError):
    """A `wait(...)` gave up before the job finished."""


class APIError(SimplaneError):
    """The server answered with an error status."""

    def __init__(self, status: int, code: str, detail: str, *, title: str = "",
                 type: str = "", errors: list[FieldError] | None = None,
                 request_id: str | None = None, response: httpx.Response | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.type = type
        self.errors = errors or []
        self.request_id = request_id
        self.response = response

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers if self.response is not None else httpx.Headers()


class ValidationError(APIError):
    """400: the request was malformed; `errors` names every bad field."""


class AuthenticationError(APIError):
    """401: wrong client credentials, or a token the server no longer accepts."""


class PermissionDeniedError(APIError):
    """403: the credential's role does not allow the operation."""


class NotFoundError(APIError):
    """404: no such resource in this account (another account's resources look the same)."""


class MethodNotAllowedError(APIError):
    """405: the route exists but not with this method."""


class PreconditionFailedError(APIError):
    """412: a business precondition or an If-Match failed; `code` says which."""


class EtagMismatchError(PreconditionFailedError):
    """412 `etag_mismatch`: the resource changed since the ETag given in If-Match was read."""


class InvalidStateTransitionError(PreconditionFailedError):
    """412 `invalid_state_transition`: e.g. activating a RETIRED Thing."""


class InUseError(PreconditionFailedError):
    """412 `in_use`: the resource is still used (a group with Things, a profile of a group...)."""


class IdempotencyKeyReusedError(PreconditionFailedError):
    """412 `idempotency_key_reused`: the key was used before with another body."""


class RateLimitedError(APIError):
    """429: too many requests; still refused after the client's bounded retries."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServerError(APIError):
    """5xx: the server failed; the request id names it in the server's logs."""


class ServiceUnavailableError(ServerError):
    """503: the database or a network element is unavailable; retry later."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    412: PreconditionFailedError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}

_PRECONDITIONS: dict[str, type[PreconditionFailedError]] = {
    "etag_mismatch": EtagMismatchError,
    "invalid_state_transition": InvalidStateTransitionError,
    "in_use": InUseError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
}


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_class(status: int, code: str) -> type[APIError]:
    if status == 412:
        return _PRECONDITIONS.get(code, PreconditionFailedError)
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return APIError


def error_from_response(response: httpx.Response) -> APIError:
    """Reads problem+json, the OAuth error format of the token endpoint, or anything else."""
    status = response.status_code
    body: Any = None
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    code, detail, title, kind, errors = f"http_{status}", "", "", "", []
    if isinstance(body, dict):
        if "code" in body or "detail" in body:
            code = str(body.get("code") or code)
            detail = str(body.get("detail") or "")
            title = str(body.get("title") or "")
            kind = str(body.get("type") or "")
            errors = [FieldError(str(e.get("field", "")), str(e.get("message", "")))
                      for e in body.get("errors") or [] if isinstance(e, dict)]
        elif "error" in body:  # RFC 6749 §5.2, from the token endpoint
            code = str(body["error"])
            detail = str(body.get("error_description") or body["error"])
    if not detail:
        text = response.text.strip().replace("\n", " ")
        detail = text[:200] if text else (response.reason_phrase or f"HTTP {status}")
    cls = error_class(status, code)
    return cls(status, code, detail, title=title, type=kind, errors=errors,
               request_id=response.headers.get("x-request-id"), response=response)
