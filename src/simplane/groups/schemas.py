from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=2000)]
Reference = Annotated[str, Field(min_length=1, max_length=40)]


class StrictModel(BaseModel):
    # strict: JSON true/false only for booleans ("yes", 1 and "true" are type errors, not guesses).
    model_config = ConfigDict(extra="forbid", strict=True)


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    network_id: str
    ip_profile_id: str
    is_default: bool
    thing_count: int
    created_at: datetime
    updated_at: datetime


class GroupList(BaseModel):
    items: list[GroupOut]
    next_cursor: str | None


class GroupCreate(StrictModel):
    name: Name
    description: Description = ""
    network_id: Reference = None  # type: ignore[assignment]  # omitted: the account default
    ip_profile_id: Reference = None  # type: ignore[assignment]


class GroupPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    network_id: Reference = None  # type: ignore[assignment]
    ip_profile_id: Reference = None  # type: ignore[assignment]
