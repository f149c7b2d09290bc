from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BillingSettings(BaseModel):
    currency: str
    cycle: str = "MONTHLY"


class IpQuota(BaseModel):
    allocations: list[str]
    total: int
    assigned_to_pools: int
    free: int


class Coverage(BaseModel):
    countries: list[str]
    rats: list[str]


class Limits(BaseModel):
    rate_limit_per_second: float
    rate_limit_burst: int
    firewall_rules_per_chain: int
    bulk_action_max_thing_ids: int
    sms_max_segments: int


class AccountOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    apn: str
    billing: BillingSettings
    ip_quota: IpQuota
    coverage: Coverage
    limits: Limits


class AccountPatch(StrictModel):
    name: str = Field(min_length=1, max_length=200)


class ApnOut(BaseModel):
    name: str
    shared: bool = True
    description: str


class ApnList(BaseModel):
    items: list[ApnOut]
    next_cursor: str | None = None
