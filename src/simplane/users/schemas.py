from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RoleName = Literal["admin", "manager", "viewer", "billing"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class OAuthError(BaseModel):
    error: str
    error_description: str | None = None


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: RoleName
    status: Literal["ACTIVE", "DISABLED"]
    created_at: datetime


class UserCreate(StrictModel):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field("", max_length=200)
    role: RoleName


class UserPatch(StrictModel):
    # A default of None is not validated, so an omitted field stays None (unchanged) while an
    # explicit JSON null fails validation: none of these fields can be cleared.
    name: str = Field(None, max_length=200)  # type: ignore[assignment]
    role: RoleName = None  # type: ignore[assignment]
    status: Literal["ACTIVE", "DISABLED"] = None  # type: ignore[assignment]


class UserList(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class MeOut(BaseModel):
    user: UserOut
    role: RoleName
    account: dict[str, str]
    client_id: str


class CredentialCreate(StrictModel):
    name: str = Field("", max_length=200)


class CredentialOut(BaseModel):
    id: str
    client_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class CredentialCreated(CredentialOut):
    client_secret: str = Field(description="Shown once; only a hash is stored.")


class CredentialList(BaseModel):
    items: list[CredentialOut]
    next_cursor: str | None


class AuditEntryOut(BaseModel):
    id: str
    occurred_at: datetime
    actor_user_id: str | None
    client_id: str | None
    method: str
    path: str
    resource_id: str | None
    changed_fields: dict
    status: int
    request_id: str


class AuditList(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None
