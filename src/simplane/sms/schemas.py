from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RequestedEncoding = Literal["AUTO", "GSM7", "UCS2", "BINARY"]
SmsStatus = Literal["QUEUED", "SENT", "DELIVERED", "FAILED", "EXPIRED", "RECEIVED", "REJECTED"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Content(StrictModel):
    text: Annotated[str, Field(max_length=2000)] = None  # type: ignore[assignment]
    data_base64: Annotated[str, Field(max_length=2000)] = None  # type: ignore[assignment]
    encoding: RequestedEncoding = "AUTO"

    @model_validator(mode="after")
    def _one_body(self) -> _Content:
        if (self.text is None) == (self.data_base64 is None):
            raise ValueError("give exactly one of text or data_base64")
        if self.data_base64 is not None and self.encoding not in ("AUTO", "BINARY"):
            raise ValueError(f"data_base64 is sent as BINARY, not {self.encoding}")
        if self.text is not None and self.encoding == "BINARY":
            raise ValueError("BINARY takes data_base64, not text")
        return self


class SmsSend(_Content):
    validity_seconds: Annotated[int, Field(ge=60, le=604800)] = 86400


class NetworkSmsIn(_Content):
    imsi: Annotated[str, Field(pattern=r"^\d{15}$")]


class SmsOut(BaseModel):
    id: str
    thing_id: str
    direction: Literal["MT", "MO"]
    status: SmsStatus
    encoding: Literal["GSM7", "UCS2", "BINARY"]
    text: str | None = None
    data_base64: str | None = None
    segments: int
    validity_seconds: int | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    error: str | None


class SmsList(BaseModel):
    items: list[SmsOut]
    next_cursor: str | None
