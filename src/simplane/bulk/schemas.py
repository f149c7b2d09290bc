from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal["ACTIVATE", "SUSPEND", "RETIRE", "MOVE_TO_GROUP", "ADD_TAGS", "REMOVE_TAGS",
                 "SET_SERVICES", "SEND_SMS"]
JobStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "CANCELLED", "FAILED"]
MAX_THING_IDS = 100_000


class StrictModel(BaseModel):
    # strict: JSON true/false only for booleans ("yes", 1 and "true" are type errors, not guesses).
    model_config = ConfigDict(extra="forbid", strict=True)


class TagTarget(StrictModel):
    all: Annotated[list[str], Field(min_length=1, max_length=50)] = None  # type: ignore[assignment]
    any: Annotated[list[str], Field(min_length=1, max_length=50)] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one(self) -> TagTarget:
        if (self.all is None) == (self.any is None):
            raise ValueError("give exactly one of all or any")
        return self


class FilterTarget(StrictModel):
    state: Literal["PROVISIONED", "ACTIVE", "SUSPENDED", "RETIRED"] | None = None
    things_group_id: str | None = None
    tag: list[str] | None = None
    iccid: str | None = None
    imsi: str | None = None
    imei: str | None = None
    ip_address: str | None = None
    connection_status: Literal["ATTACHED", "DETACHED", "NEVER"] | None = None


class Target(StrictModel):
    thing_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=40)]],
                         Field(min_length=1, max_length=MAX_THING_IDS)] = None  # type: ignore[assignment]
    tags: TagTarget = None  # type: ignore[assignment]
    things_group_ids: Annotated[list[str], Field(min_length=1, max_length=1000)] = None  # type: ignore[assignment]
    filter: FilterTarget = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [k for k in ("thing_ids", "tags", "things_group_ids", "filter")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of thing_ids, tags, things_group_ids or filter")
        return self


class BulkActionCreate(StrictModel):
    action: Action
    target: Target
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False


class BulkActionOut(BaseModel):
    id: str
    action: Action
    status: JobStatus
    dry_run: bool
    total: int
    processed: int
    succeeded: int
    failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BulkActionList(BaseModel):
    items: list[BulkActionOut]
    next_cursor: str | None


class ItemOut(BaseModel):
    thing_id: str
    status: Literal["PENDING", "SUCCEEDED", "FAILED"]
    code: str | None
    detail: str | None


class ItemList(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None
