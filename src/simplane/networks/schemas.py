from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(min_length=1, max_length=200)]
Cidr = Annotated[str, Field(min_length=9, max_length=18, description="IPv4 network, e.g. 10.64.16.0/24")]
Port = Annotated[int, Field(ge=1, le=65535)]
LeaseSeconds = Annotated[int, Field(ge=60, le=30 * 86400)]
PoolPrefix = Annotated[int, Field(ge=8, le=29)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IpPoolOut(BaseModel):
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


class IpPoolList(BaseModel):
    items: list[IpPoolOut]
    next_cursor: str | None


class IpPoolCreate(StrictModel):
    cidr: Cidr = None  # type: ignore[assignment]
    prefix_length: PoolPrefix = None  # type: ignore[assignment]
    lease_seconds: LeaseSeconds = 86400

    @model_validator(mode="after")
    def _one_of(self) -> IpPoolCreate:
        if (self.cidr is None) == (self.prefix_length is None):
            raise ValueError("give exactly one of cidr or prefix_length")
        return self


class IpPoolPatch(StrictModel):
    prefix_length: PoolPrefix = None  # type: ignore[assignment]
    lease_seconds: LeaseSeconds = None  # type: ignore[assignment]


class NetworkOut(BaseModel):
    id: str
    name: str
    apn: str
    is_default: bool
    device_isolation: bool
    dns_servers: list[str]
    nat_public_ip: str | None
    vpn_gateway_ip: str | None
    ip_pools: list[IpPoolOut]
    created_at: datetime
    updated_at: datetime


class NetworkList(BaseModel):
    items: list[NetworkOut]
    next_cursor: str | None


DnsServers = Annotated[list[Annotated[str, Field(max_length=15)]], Field(max_length=4)]


class NetworkCreate(StrictModel):
    name: Name
    device_isolation: bool = False
    dns_servers: DnsServers = None  # type: ignore[assignment]


class NetworkPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    device_isolation: bool = None  # type: ignore[assignment]
    dns_servers: DnsServers = None  # type: ignore[assignment]


class RouteOut(BaseModel):
    id: str
    network_id: str
    destination: str
    target: Literal["INTERNET", "VPN_TUNNEL"]
    vpn_tunnel_id: str | None
    created_at: datetime


class RouteList(BaseModel):
    items: list[RouteOut]
    next_cursor: str | None


class RouteCreate(StrictModel):
    destination: Cidr
    target: Literal["INTERNET", "VPN_TUNNEL"]
    vpn_tunnel_id: Annotated[str, Field(min_length=1, max_length=40)] = None  # type: ignore[assignment]


class NatRuleOut(BaseModel):
    id: str
    network_id: str
    protocol: Literal["TCP", "UDP"]
    public_ip: str
    public_port: int
    thing_id: str
    private_port: int
    description: str
    created_at: datetime
    updated_at: datetime


class NatRuleList(BaseModel):
    items: list[NatRuleOut]
    next_cursor: str | None


class NatRuleCreate(StrictModel):
    protocol: Literal["TCP", "UDP"]
    public_port: Port
    thing_id: Annotated[str, Field(min_length=1, max_length=40)]
    private_port: Port
    description: Annotated[str, Field(max_length=2000)] = ""


class NatRulePatch(StrictModel):
    public_port: Port = None  # type: ignore[assignment]
    private_port: Port = None  # type: ignore[assignment]
    description: Annotated[str, Field(max_length=2000)] = None  # type: ignore[assignment]


Proposal = Annotated[str, Field(min_length=3, max_length=200)]


class VpnTunnelOut(BaseModel):
    id: str
    network_id: str
    name: str
    remote_gateway: str
    remote_subnets: list[str]
    local_subnets: list[str]
    ike_version: Literal[2]
    ike_proposals: list[str]
    esp_proposals: list[str]
    dpd_seconds: int
    local_gateway: str
    status: Literal["DOWN", "CONNECTING", "UP"]
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class VpnTunnelList(BaseModel):
    items: list[VpnTunnelOut]
    next_cursor: str | None


Subnets = Annotated[list[Cidr], Field(min_length=1, max_length=32)]
Psk = Annotated[str, Field(min_length=16, max_length=128, description="Write-only pre-shared key")]


class VpnTunnelCreate(StrictModel):
    name: Name
    remote_gateway: Annotated[str, Field(max_length=15)]
    remote_subnets: Subnets
    local_subnets: Subnets = None  # type: ignore[assignment]
    ike_version: Literal[2] = 2
    ike_proposals: Annotated[list[Proposal], Field(min_length=1, max_length=8)] = [
        "aes256-sha256-modp2048"]
    esp_proposals: Annotated[list[Proposal], Field(min_length=1, max_length=8)] = [
        "aes256-sha256-modp2048"]
    psk: Psk
    dpd_seconds: Annotated[int, Field(ge=5, le=3600)] = 30


class VpnTunnelPatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    remote_gateway: Annotated[str, Field(max_length=15)] = None  # type: ignore[assignment]
    remote_subnets: Subnets = None  # type: ignore[assignment]
    local_subnets: Subnets | None = None
    ike_proposals: Annotated[list[Proposal], Field(min_length=1, max_length=8)] = None  # type: ignore[assignment]
    esp_proposals: Annotated[list[Proposal], Field(min_length=1, max_length=8)] = None  # type: ignore[assignment]
    psk: Psk = None  # type: ignore[assignment]
    dpd_seconds: Annotated[int, Field(ge=5, le=3600)] = None  # type: ignore[assignment]


class TraceRequest(StrictModel):
    direction: Literal["OUTBOUND", "INBOUND", "DEVICE_TO_DEVICE"]
    protocol: Literal["TCP", "UDP", "ICMP"]
    source_ip: Annotated[str, Field(max_length=15)]
    source_port: Annotated[int, Field(ge=0, le=65535)] = None  # type: ignore[assignment]
    destination_ip: Annotated[str, Field(max_length=15)]
    destination_port: Annotated[int, Field(ge=0, le=65535)] = None  # type: ignore[assignment]


class TraceStep(BaseModel):
    stage: str
    result: str
    detail: str
    rule_id: str | None = None


class TraceOut(BaseModel):
    verdict: Literal["ALLOW", "DROP"]
    reason: str
    steps: list[TraceStep]
    translated: dict[str, str | int | None]
