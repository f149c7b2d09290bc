"""Who is calling and what their role may do. Pure logic: no FastAPI here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    VIEWER = "viewer"
    BILLING = "billing"


@dataclass(frozen=True)
class Principal:
    account_id: str
    user_id: str
    role: Role
    client_id: str


# Resources a manager runs day to day (api.md §2); admin adds users, credentials, account
# settings and the audit log.
MANAGED = ("things", "groups", "networks", "ip_profiles", "sms", "bulk", "webhooks", "events",
           "billing")
ADMIN_ONLY = ("users", "audit", "account_settings")

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(
        {f"{r}:{a}" for r in (*MANAGED, *ADMIN_ONLY) for a in ("read", "write")}
        | {"account:read", "apns:read", "secrets:read"}
    ),
    Role.MANAGER: frozenset(
        {f"{r}:{a}" for r in MANAGED for a in ("read", "write")}
        | {"account:read", "apns:read", "secrets:read"}
    ),
    Role.VIEWER: frozenset({f"{r}:read" for r in MANAGED} | {"account:read", "apns:read"}),
    Role.BILLING: frozenset({"account:read", "billing:read", "things:read", "groups:read"}),
}


def allows(role: Role, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS[role]
