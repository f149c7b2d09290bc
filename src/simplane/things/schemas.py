from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ThingState = Literal["PROVISIONED", "ACTIVE", "SUSPENDED", "RETIRED"]
ConnectionStatus = Literal["ATTACHED", "DETACHED", "NEVER"]
TAG_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]


class StrictModel(BaseModel):
    # strict: JSON true/false only for booleans ("yes", 1 and "true" are type errors, not guesses).
    model_config = ConfigDict(extra="forbid", strict=True)


class Services(BaseModel):
    data: bool
    sms: bool


class Connection(BaseModel):
    status: ConnectionStatus
    since: datetime | None
    rat: str | None
    country: str | None
    operator: str | None
    session_id: str | None


class ThingOut(BaseModel):
    id: str
    iccid: str
    imsi: str
    name: str
    state: ThingState
    things_group_id: str
    tags: list[str]
    services: Services
    imei: str | None
    imei_lock: bool
    ip_address: str | None
    ip_locked: bool
    connection: Connection
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None


class ThingList(BaseModel):
    items: list[ThingOut]
    next_cursor: str | None


class ServicesPatch(StrictModel):
    data: bool = None  # type: ignore[assignment]  # omitted: unchanged; null: refused
    sms: bool = None  # type: ignore[assignment]


class IpLockPatch(StrictModel):
    locked: bool
    ip_address: Annotated[str, Field(max_length=15)] | None = None


class ThingPatch(StrictModel):
    # A default of None is not validated, so an omitted field stays None (unchanged) while an
    # explicit JSON null fails validation: none of these fields can be cleared.
    name: Annotated[str, Field(max_length=200)] = None  # type: ignore[assignment]
    state: ThingState = None  # type: ignore[assignment]
    things_group_id: Annotated[str, Field(min_length=1, max_length=40)] = None  # type: ignore[assignment]
    tags: Annotated[list[Tag], Field(max_length=50)] = None  # type: ignore[assignment]
    services: ServicesPatch = None  # type: ignore[assignment]
    imei_lock: bool = None  # type: ignore[assignment]
    ip_lock: IpLockPatch = None  # type: ignore[assignment]


class StateChangeOut(BaseModel):
    id: str
    from_state: ThingState | None
    to_state: ThingState
    changed_at: datetime
    actor_user_id: str | None
    actor_client_id: str | None
    source: str


class StateChangeList(BaseModel):
    items: list[StateChangeOut]
    next_cursor: str | None


class DisconnectInfo(BaseModel):
    status: str | None
    reason: str | None
    attempts: int
    at: datetime | None


class SessionOut(BaseModel):
    id: str
    status: Literal["OPEN", "CLOSED"]
    nas_address: str
    acct_session_id: str
    ip_address: str | None
    rat: str | None
    operator: str | None
    country: str | None
    started_at: datetime
    last_update_at: datetime
    ended_at: datetime | None
    bytes_up: int
    bytes_down: int
    terminate_cause: str | None
    disconnect: DisconnectInfo


class SessionList(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class UsageDay(BaseModel):
    date: date
    bytes_up: int
    bytes_down: int
    sms_mt: int
    sms_mo: int


class UsageOut(BaseModel):
    thing_id: str
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    items: list[UsageDay]

    model_config = ConfigDict(populate_by_name=True)


class ImeiChangeOut(BaseModel):
    id: str
    imei: str
    imeisv: str | None
    previous_imei: str | None
    observed_at: datetime
    operator: str | None
    rat: str | None


class ImeiHistoryList(BaseModel):
    items: list[ImeiChangeOut]
    next_cursor: str | None


class DisconnectAccepted(BaseModel):
    thing_id: str
    session_ids: list[str]
    status: Literal["PENDING"] = "PENDING"
