from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class EventOut(BaseModel):
    id: str
    type: str
    occurred_at: datetime
    thing_id: str | None
    data: dict[str, Any]


class EventList(BaseModel):
    items: list[EventOut]
    next_cursor: str | None
