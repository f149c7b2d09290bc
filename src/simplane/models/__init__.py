"""All ORM models, importable from one place (Alembic's autogenerate reads this metadata)."""

from .account import Account, IpAllocation, IpPool, Network
from .base import Base, utcnow
from .billing import BillingCycle, BillingLine, TariffVersion
from .event import AuditEntry, Event, IdempotencyRecord
from .jobs import BulkAction, BulkActionItem, Webhook, WebhookDelivery
from .firewall import FirewallRule, IpProfile
from .networking import IpLease, NatRule, Route, VpnTunnel
from .thing import Thing, ThingsGroup, ThingStateChange, ThingTag
from .sms import NetworkCredential, SmsMessage
from .usage import DataSession, ImeiObservation, UsageCycle, UsageDaily, UsageRecord
from .user import Credential, User

__all__ = [
    "Account",
    "AuditEntry",
    "Base",
    "BillingCycle",
    "BulkAction",
    "BulkActionItem",
    "BillingLine",
    "Credential",
    "DataSession",
    "Event",
    "FirewallRule",
    "IdempotencyRecord",
    "ImeiObservation",
    "IpAllocation",
    "IpLease",
    "IpPool",
    "IpProfile",
    "NatRule",
    "Network",
    "NetworkCredential",
    "Route",
    "SmsMessage",
    "TariffVersion",
    "Thing",
    "ThingStateChange",
    "ThingTag",
    "ThingsGroup",
    "UsageCycle",
    "UsageDaily",
    "UsageRecord",
    "User",
    "VpnTunnel",
    "Webhook",
    "WebhookDelivery",
    "utcnow",
]
