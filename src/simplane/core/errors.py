"""Errors that carry their HTTP status and stable machine code (RFC 9457 problem details).

Services raise these; they never import FastAPI. The app turns them into problem+json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldError:
    field: str
    message: str


@dataclass
class AppError(Exception):
    detail: str
    status: int = 500
    code: str = "internal_error"
    title: str = "Internal error"
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return body


def validation_error(detail: str, errors: list[FieldError] | None = None) -> AppError:
    return AppError(detail, 400, "validation_error", "Invalid request", errors or [])


def bad_field(field_name: str, message: str) -> AppError:
    return validation_error(f"{field_name}: {message}", [FieldError(field_name, message)])


def unknown_reference(field_name: str, value: str) -> AppError:
    return AppError(
        f"{field_name} {value!r} does not name a resource of this account",
        400,
        "unknown_reference",
        "Unknown reference",
        [FieldError(field_name, f"no such resource: {value}")],
    )


def not_found(kind: str, resource_id: str) -> AppError:
    return AppError(f"{kind} {resource_id!r} was not found", 404, "not_found", "Not found")


def precondition(code: str, detail: str, title: str = "Precondition failed") -> AppError:
    return AppError(detail, 412, code, title)


def forbidden(detail: str) -> AppError:
    return AppError(detail, 403, "forbidden", "Forbidden")


def unauthorized(detail: str) -> AppError:
    return AppError(
        detail, 401, "unauthorized", "Unauthorized", headers={"WWW-Authenticate": "Bearer"}
    )


# Every code the API can answer, with its status: the OpenAPI document lists them per route.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "validation_error": (400, "Malformed JSON, unknown field, invalid value or bad query parameter"),
    "unknown_reference": (400, "A body field names a resource that this account does not have"),
    "unauthorized": (401, "Missing, malformed, expired or revoked token"),
    "forbidden": (403, "The caller's role does not allow this operation"),
    "not_found": (404, "Unknown route or resource, or another account's resource"),
    "method_not_allowed": (405, "Method not allowed on this route; see the Allow header"),
    "etag_mismatch": (412, "If-Match does not match the current ETag"),
    "idempotency_key_reused": (412, "Idempotency-Key reused with another body"),
    "invalid_state_transition": (412, "The state machine does not allow this transition"),
    "in_use": (412, "The resource is in use"),
    "default_resource": (412, "The account's default resource cannot be deleted"),
    "ip_locked": (412, "A locked IP address prevents the change"),
    "email_taken": (412, "The email already belongs to a user"),
    "last_admin": (412, "The change would leave the account without an active admin"),
    "quota_exceeded": (412, "A limit on the number of resources would be exceeded"),
    "overlap": (412, "The address block overlaps another pool, allocation or subnet"),
    "ip_quota_exceeded": (412, "Beyond the account's IP allocation; ask the operator for an extension"),
    "ip_space_exhausted": (412, "The platform's account IP space is used up"),
    "pool_exhausted": (412, "No address is free in the Network's pools"),
    "ip_in_use": (412, "The requested address is held by another Thing"),
    "ip_not_locked": (412, "The Thing holds no locked IP"),
    "not_on_network": (412, "The Thing is not in a group on this Network"),
    "conflict": (412, "The value is already taken (route destination, NAT public port)"),
    "nat_ip_exhausted": (412, "No public NAT address is left"),
    "not_attached": (412, "The Thing has no open data session"),
    "sms_not_allowed": (412, "The Thing may not use SMS (not ACTIVE, or services.sms off)"),
    "no_tariff": (412, "The account has no tariff for that cycle"),
    "rate_limited": (429, "Too many requests; see Retry-After"),
    "internal_error": (500, "Unexpected error"),
    "service_unavailable": (503, "The database is unavailable; see Retry-After"),
}
