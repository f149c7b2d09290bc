"""Accounts: what the operator creates, re-prices and extends, and what the customer reads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.config import Settings
from ..core.db import advisory_lock
from ..core.errors import bad_field, not_found, precondition
from ..core.ids import new_id
from ..core.security import hash_secret, new_client_id, new_client_secret
from ..models import Account, Credential, IpAllocation, IpPool, IpProfile, Network, ThingsGroup, User
from ..networks import ipam
from . import repository
from .schemas import AccountOut, BillingSettings, Coverage, IpQuota, Limits

COVERAGE = Coverage(countries=["NL", "BE", "LU"], rats=["2G", "3G", "4G", "LTE-M"])
IP_SPACE_LOCK = "simplane:ip-space"


@dataclass
class Tariff:
    currency: str = "EUR"
    monthly_fee: Decimal = Decimal("0")
    price_per_mb: Decimal = Decimal("0")
    price_per_sms_mt: Decimal = Decimal("0")
    price_per_sms_mo: Decimal = Decimal("0")


@dataclass
class CreatedAccount:
    account: Account
    admin: User
    client_id: str
    client_secret: str


def _validate_tariff(tariff: Tariff) -> None:
    if len(tariff.currency) != 3 or not tariff.currency.isalpha() or not tariff.currency.isupper():
        raise bad_field("currency", f"{tariff.currency!r} is not an ISO 4217 code such as EUR")
    for name in ("monthly_fee", "price_per_mb", "price_per_sms_mt", "price_per_sms_mo"):
        value = getattr(tariff, name)
        if not value.is_finite() or value < 0:
            raise bad_field(name, f"{value} must be a non-negative amount")


def _grant_allocation(session: Session, settings: Settings, account_id: str,
                      cidr: str | None) -> IpAllocation:
    advisory_lock(session, IP_SPACE_LOCK)
    granted = repository.all_allocation_bounds(session)
    if cidr is None:
        cidr = ipam.first_free_block([ipam.bounds(settings.account_ip_space)], granted,
                                     settings.account_allocation_prefix)
        if cidr is None:
            raise precondition("ip_space_exhausted",
                               f"no /{settings.account_allocation_prefix} is left in "
                               f"{settings.account_ip_space}")
    else:
        try:
            cidr = str(ipaddress.IPv4Network(cidr, strict=True))
        except ValueError as exc:
            raise bad_field("cidr", f"{cidr!r} is not an IPv4 network ({exc})") from None
        clash = next((b for b in granted if ipam.overlaps(b, ipam.bounds(cidr))), None)
        if clash is not None:
            raise precondition("overlap", f"{cidr} overlaps an allocation already granted")
    first, last = ipam.bounds(cidr)
    allocation = IpAllocation(id=new_id("allocation"), account_id=account_id, cidr=cidr,
                              first_address=first, last_address=last)
    session.add(allocation)
    return allocation


def create_account(session: Session, settings: Settings, *, name: str, admin_email: str,
                   ip_allocation: str | None = None, tariff: Tariff | None = None) -> CreatedAccount:
    """An account with its allocation, default Network and pool, IP Profile, Things Group,
    tariff, and a first admin holding one credential."""
    from ..users.service import normalise_email, validate_email

    tariff = tariff or Tariff()
    _validate_tariff(tariff)
    if not name.strip():
        raise bad_field("name", "must not be empty")
    email = normalise_email(admin_email)
    validate_email(session, email)

    account = Account(id=new_id("account"), name=name.strip(), currency=tariff.currency,
                      monthly_fee=tariff.monthly_fee, price_per_mb=tariff.price_per_mb,
                      price_per_sms_mt=tariff.price_per_sms_mt,
                      price_per_sms_mo=tariff.price_per_sms_mo)
    session.add(account)
    session.flush()
    from ..billing.tariffs import record_initial

    record_initial(session, account)
    allocation = _grant_allocation(session, settings, account.id, ip_allocation)
    session.flush()

    from ..networks.service import DEFAULT_DNS, assign_nat_ip

    network = Network(id=new_id("network"), account_id=account.id, name="Default network",
                      is_default=True, dns_servers=list(DEFAULT_DNS),
                      nat_public_ip=assign_nat_ip(session, settings),
                      vpn_gateway_ip=settings.vpn_gateway_ip)
    prefix = max(settings.default_pool_prefix, int(allocation.cidr.split("/")[1]))
    pool_cidr = ipam.first_free_block([(allocation.first_address, allocation.last_address)], [],
                                      prefix)
    assert pool_cidr is not None  # the allocation itself is at least this large
    first, last = ipam.bounds(pool_cidr)
    pool = IpPool(id=new_id("ip_pool"), account_id=account.id, network_id=network.id,
                  cidr=pool_cidr, first_address=first, last_address=last)
    profile = IpProfile(id=new_id("ip_profile"), account_id=account.id, name="Default profile",
                        description="Allows all traffic both ways", is_default=True)
    group = ThingsGroup(id=new_id("things_group"), account_id=account.id, name="Default group",
                        network_id=network.id, ip_profile_id=profile.id, is_default=True)
    admin = User(id=new_id("user"), account_id=account.id, email=email, name="Administrator",
                 role="admin", status="ACTIVE")
    client_id, client_secret = new_client_id(), new_client_secret()
    credential = Credential(id=new_id("credential"), account_id=account.id, user_id=admin.id,
                            client_id=client_id, secret_hash=hash_secret(client_secret),
                            name="initial")
    session.add_all([network, profile])
    session.flush()
    session.add_all([pool, group, admin])
    session.flush()
    session.add(credential)
    session.flush()
    return CreatedAccount(account, admin, client_id, client_secret)


def require_account(session: Session, account_id: str, *, for_update: bool = False) -> Account:
    account = repository.get_account(session, account_id, for_update=for_update)
    if account is None:
        raise not_found("account", account_id)
    return account


def account_view(session: Session, settings: Settings, account: Account) -> AccountOut:
    allocations = repository.allocations(session, account.id)
    total = sum(a.last_address - a.first_address + 1 for a in allocations)
    pooled = repository.pooled_addresses(session, account.id)
    return AccountOut(
        id=account.id, name=account.name, created_at=account.created_at, apn=settings.apn,
        billing=BillingSettings(currency=account.currency),
        ip_quota=IpQuota(allocations=[a.cidr for a in allocations], total=total,
                         assigned_to_pools=pooled, free=total - pooled),
        coverage=COVERAGE,
        limits=Limits(rate_limit_per_second=settings.rate_limit_per_second,
                      rate_limit_burst=settings.rate_limit_burst, firewall_rules_per_chain=1000,
                      bulk_action_max_thing_ids=100_000, sms_max_segments=10),
    )


def rename_account(session: Session, account: Account, name: str) -> Account:
    account.name = name.strip()
    if not account.name:
        raise bad_field("name", "must not be empty")
    session.flush()
    return account


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.id)))


def set_tariff(session: Session, account_id: str, **changes: object) -> Account:
    account = require_account(session, account_id, for_update=True)
    tariff = Tariff(account.currency, account.monthly_fee, account.price_per_mb,
                    account.price_per_sms_mt, account.price_per_sms_mo)
    for key, value in changes.items():
        if value is not None:
            setattr(tariff, key, value)
    _validate_tariff(tariff)
    for key, value in vars(tariff).items():
        setattr(account, key, value)
    session.flush()
    from ..billing.tariffs import record_change

    record_change(session, account)
    return account


def extend_ip(session: Session, settings: Settings, account_id: str, cidr: str) -> IpAllocation:
    require_account(session, account_id, for_update=True)
    allocation = _grant_allocation(session, settings, account_id, cidr)
    session.flush()
    return allocation


__all__ = ["CreatedAccount", "Tariff", "account_view", "create_account",
           "extend_ip", "list_accounts", "rename_account", "require_account", "set_tariff"]
