from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..events.service import EVENT_TYPES

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Url = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]
Secret = Annotated[str, Field(min_length=16, max_length=256)]


class StrictModel(BaseModel):
    # strict: JSON true/false only for booleans ("yes", 1 and "true" are type errors, not guesses).
    model_config = ConfigDict(extra="forbid", strict=True)


class WebhookCreate(StrictModel):
    url: Url
    event_types: Annotated[list[EventType], Field(max_length=len(EVENT_TYPES))] = []  # type: ignore[valid-type]
    enabled: bool = True
    secret: Secret = None  # type: ignore[assignment]


class WebhookPatch(StrictModel):
    url: Url = None  # type: ignore[assignment]
    event_types: Annotated[list[EventType], Field(max_length=len(EVENT_TYPES))] = None  # type: ignore[valid-type,assignment]
    enabled: bool = None  # type: ignore[assignment]
    secret: Secret = None  # type: ignore[assignment]


class WebhookOut(BaseModel):
    id: str
    url: str
    event_types: list[str] = Field(description="Empty: every event type")
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once; used to verify Simplane-Signature")


class WebhookList(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: Literal["PENDING", "SENDING", "DELIVERED", "FAILED"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
