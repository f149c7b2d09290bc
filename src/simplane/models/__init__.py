"""All ORM models, importable from one place (Alembic's autogenerate reads this metadata)."""

from .account import Account, IpAllocation, IpPool, Network
from .base import Base, utcnow
from .event import AuditEntry, Event, IdempotencyRecord
from .firewall import IpProfile
from .thing import Thing, ThingsGroup, ThingStateChange, ThingTag
from .user import Credential, User

__all__ = [
    "Account",
    "AuditEntry",
    "Base",
    "Credential",
    "Event",
    "IdempotencyRecord",
    "IpAllocation",
    "IpPool",
    "IpProfile",
    "Network",
    "Thing",
    "ThingStateChange",
    "ThingTag",
    "ThingsGroup",
    "User",
    "utcnow",
]
