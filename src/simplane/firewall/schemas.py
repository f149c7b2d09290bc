from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .evaluate import MAX_PORT, parse_cidr, parse_ip, parse_ports

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=2000)]
Action = Literal["ALLOW", "DENY"]
Chain = Literal["INBOUND", "OUTBOUND"]
RuleProtocol = Literal["ANY", "TCP", "UDP", "ICMP"]
PacketProtocol = Literal["TCP", "UDP", "ICMP"]


def _ports(value: str) -> str:
    parse_ports(value)
    return value


Cidr = Annotated[str, AfterValidator(parse_cidr),
                 Field(description="Strict IPv4 CIDR (host bits zero), e.g. 10.0.0.0/8")]
Ports = Annotated[str, AfterValidator(_ports),
                  Field(description='One port ("443") or an inclusive range ("1000-2000"), '
                                    f"1-{MAX_PORT}; TCP and UDP rules only")]
Position = Annotated[int, Field(ge=1, description=(
    "1-based place in the chain. Create: 1..n+1 (default n+1, append); the rules at and after "
    "it move down one. Update: 1..n within the chain (1..m+1 when `chain` changes). A position "
    "beyond those answers 400."))]
IpAddress = Annotated[str, AfterValidator(parse_ip)]
PacketPort = Annotated[int, Field(ge=1, le=MAX_PORT)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleOut(BaseModel):
    id: str
    chain: Chain
    position: int
    action: Action
    protocol: RuleProtocol
    remote_cidr: str
    ports: str | None
    description: str
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]
    next_cursor: str | None


class ChainOut(BaseModel):
    default_action: Action
    rules: list[RuleOut]


class ProfileOut(BaseModel):
    id: str
    name: str
    description: str
    is_default: bool
    inbound: ChainOut
    outbound: ChainOut
    things_group_count: int
    created_at: datetime
    updated_at: datetime


class ProfileList(BaseModel):
    items: list[ProfileOut]
    next_cursor: str | None


class ChainSettings(StrictModel):
    default_action: Action = "ALLOW"


class ChainPatch(StrictModel):
    default_action: Action = None  # type: ignore[assignment]


class ProfileCreate(StrictModel):
    name: Name
    description: Description = ""
    inbound: ChainSettings = Field(default_factory=ChainSettings)
    outbound: ChainSettings = Field(default_factory=ChainSettings)


class ProfilePatch(StrictModel):
    name: Name = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    inbound: ChainPatch = None  # type: ignore[assignment]
    outbound: ChainPatch = None  # type: ignore[assignment]


class RuleCreate(StrictModel):
    chain: Chain
    action: Action
    protocol: RuleProtocol = "ANY"
    remote_cidr: Cidr = "0.0.0.0/0"
    ports: Ports | None = None
    description: Description = ""
    position: Position = None  # type: ignore[assignment]  # omitted: append


class RulePatch(StrictModel):
    chain: Chain = None  # type: ignore[assignment]
    action: Action = None  # type: ignore[assignment]
    protocol: RuleProtocol = None  # type: ignore[assignment]
    remote_cidr: Cidr = None  # type: ignore[assignment]
    ports: Ports | None = None  # null clears the ports
    description: Description = None  # type: ignore[assignment]
    position: Position = None  # type: ignore[assignment]


class EvaluateRequest(StrictModel):
    direction: Chain
    protocol: PacketProtocol
    remote_ip: IpAddress = Field(description="The source on INBOUND, the destination on OUTBOUND")
    port: PacketPort | None = Field(
        default=None, description="TCP/UDP only (required for them): the Thing's port on "
                                  "INBOUND, the remote port on OUTBOUND")


class EvaluateResult(BaseModel):
    action: Action
    rule_id: str | None
