"""Typed views of the API's resources.

Models accept fields they do not know (a newer server may add some) and keep them; enumerations
are plain strings for the same reason. Money is `Decimal`, timestamps are aware `datetime`s.
Single-resource reads remember their `ETag` (see `Resource.etag`) for `if_match=`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Resource(Model):
    _etag: str | None = PrivateAttr(default=None)

    @property
    def etag(self) -> str | None:
        """The strong ETag of the response this object came from (None for list items)."""
        return self._etag


T = TypeVar("T")


class Page(Model, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


# Things -------------------------------------------------------------------------------------

class Services(Model):
    data: bool
    sms: bool


class Connection(Model):
    status: str
    since: datetime | None = None
    rat: str | None = None
    country: str | None = None
    operator: str | None = None
    session_id: str | None = None


class Thing(Resource):
    id: str
    iccid: str
    imsi: str
    name: str
    state: str
    things_group_id: str
    tags: list[str]
    services: Services
    imei: str | None = None
    imei_lock: bool = False
    ip_address: str | None = None
    ip_locked: bool = False
    connection: Connection
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None = None


class StateChange(Model):
    id: str
    from_state: str | None = None
    to_state: str
    changed_at: datetime
    actor_user_id: str | None = None
    actor_client_id: str | None = None
    source: str


class ImeiChange(Model):
    id: str
    imei: str
    imeisv: str | None = None
    previous_imei: str | None = None
    observed_at: datetime
    operator: str | None = None
    rat: str | None = None


class DisconnectInfo(Model):
    status: str | None = None
    reason: str | None = None
    attempts: int = 0
    at: datetime | None = None


class DataSession(Model):
    id: str
    status: str
    nas_address: str
    acct_session_id: str
    ip_address: str | None = None
    rat: str | None = None
    operator: str | None = None
    country: str | None = None
    started_at: datetime
    last_update_at: datetime
    ended_at: datetime | None = None
    bytes_up: int
    bytes_down: int
    terminate_cause: str | None = None
    disconnect: DisconnectInfo | None = None


class UsageDay(Model):
    date: date
    bytes_up: int
    bytes_down: int
    sms_mt: int
    sms_mo: int


class Usage(Model):
    thing_id: str
    from_: date = Field(alias="from")
    to: date
    items: list[UsageDay]


class DisconnectAccepted(Model):
    thing_id: str
    session_ids: list[str]
    status: str = "PENDING"


# Groups, networks ---------------------------------------------------------------------------

class ThingsGroup(Resource):
    id: str
    name: str
    description: str = ""
    network_id: str
    ip_profile_id: str
    is_default: bool
    thing_count: int
    created_at: datetime
    updated_at: datetime


class IpPool(Resource):
    id: str
    network_id: str
    cidr: str
    lease_seconds: int
    size: int
    usable: int
    leased: int
    locked: int
    free: int
    created_at: datetime
    updated_at: datetime


class Network(Resource):
    id: str
    name: str
    apn: str
    is_default: bool
    device_isolation: bool
    dns_servers: list[str]
    nat_public_ip: str | None = None
    vpn_gateway_ip: str | None = None
    ip_pools: list[IpPool]
    created_at: datetime
    updated_at: datetime


class Route(Resource):
    id: str
    network_id: str
    destination: str
    target: str
    vpn_tunnel_id: str | None = None
    created_at: datetime


class NatRule(Resource):
    id: str
    network_id: str
    protocol: str
    public_ip: str
    public_port: int
    thing_id: str
    private_port: int
    description: str = ""
    created_at: datetime
    updated_at: datetime


class VpnTunnel(Resource):
    id: str
    network_id: str
    name: str
    remote_gateway: str
    remote_subnets: list[str]
    local_subnets: list[str]
    ike_version: int = 2
    ike_proposals: list[str]
    esp_proposals: list[str]
    dpd_seconds: int
    local_gateway: str
    status: str
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class TraceStep(Model):
    stage: str
    result: str
    detail: str
    rule_id: str | None = None


class TraceResult(Model):
    verdict: str
    reason: str
    steps: list[TraceStep]
    translated: dict[str, Any] = Field(default_factory=dict)


# IP profiles (firewall) ---------------------------------------------------------------------

class FirewallRule(Resource):
    id: str
    chain: str
    position: int
    action: str
    protocol: str
    remote_cidr: str
    ports: str | None = None
    description: str = ""
    created_at: datetime
    updated_at: datetime


class Chain(Model):
    default_action: str
    rules: list[FirewallRule]


class IpProfile(Resource):
    id: str
    name: str
    description: str = ""
    is_default: bool
    inbound: Chain
    outbound: Chain
    things_group_count: int
    created_at: datetime
    updated_at: datetime


class EvaluateResult(Model):
    action: str
    rule_id: str | None = None


# SMS ----------------------------------------------------------------------------------------

class Sms(Resource):
    id: str
    thing_id: str
    direction: str
    status: str
    encoding: str
    text: str | None = None
    data_base64: str | None = None
    segments: int
    validity_seconds: int | None = None
    created_at: datetime
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    error: str | None = None


# Billing ------------------------------------------------------------------------------------

class Tariff(Model):
    currency: str
    monthly_fee: Decimal
    price_per_mb: Decimal
    price_per_sms_mt: Decimal
    price_per_sms_mo: Decimal
    effective_from: str


class CurrentTariff(Tariff):
    next: Tariff | None = None


class BillingTotals(Model):
    things_charged: int
    monthly_fees: Decimal
    data_bytes: int
    data_charges: Decimal
    sms_mt: int
    sms_mo: int
    sms_charges: Decimal
    total: Decimal


class BillingLine(Model):
    thing_id: str
    iccid: str
    things_group_id: str
    monthly_fee: Decimal
    data_bytes: int
    data_charge: Decimal
    sms_mt: int
    sms_mo: int
    sms_charge: Decimal
    total: Decimal


class BillingReport(Resource):
    period: str
    start: datetime
    end: datetime
    status: str
    currency: str
    totals: BillingTotals
    lines: Page[BillingLine]


# Bulk actions, webhooks, events -------------------------------------------------------------

class BulkAction(Resource):
    id: str
    action: str
    status: str
    dry_run: bool = False
    total: int
    processed: int
    succeeded: int
    failed: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in ("COMPLETED", "CANCELLED", "FAILED")


class BulkActionItem(Model):
    thing_id: str
    status: str
    code: str | None = None
    detail: str | None = None


class Webhook(Resource):
    id: str
    url: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = None  # only in the answer to create


class WebhookDelivery(Model):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime
    last_attempt_at: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class Event(Model):
    id: str
    type: str
    occurred_at: datetime
    thing_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


# Account, users -----------------------------------------------------------------------------

class BillingSettings(Model):
    currency: str
    cycle: str = "MONTHLY"


class IpQuota(Model):
    allocations: list[str]
    total: int
    assigned_to_pools: int
    free: int


class Coverage(Model):
    countries: list[str]
    rats: list[str]


class Account(Resource):
    id: str
    name: str
    created_at: datetime
    apn: str
    billing: BillingSettings
    ip_quota: IpQuota
    coverage: Coverage
    limits: dict[str, Any] = Field(default_factory=dict)


class Apn(Model):
    name: str
    shared: bool = True
    description: str = ""


class User(Resource):
    id: str
    email: str
    name: str
    role: str
    status: str
    created_at: datetime


class Me(Model):
    user: User
    role: str
    account: dict[str, Any]
    client_id: str


class Credential(Model):
    id: str
    client_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None
    client_secret: str | None = None  # only in the answer to create


class AuditEntry(Model):
    id: str
    occurred_at: datetime
    actor_user_id: str | None = None
    client_id: str | None = None
    method: str
    path: str
    resource_id: str | None = None
    changed_fields: dict[str, Any] = Field(default_factory=dict)
    status: int
    request_id: str
