"""NAT port forwarding: a public port of the Network's NAT address to a Thing's locked IP."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core.errors import not_found, precondition, unknown_reference
from ..core.ids import new_id
from ..models import NatRule, Network, Thing, ThingsGroup, utcnow
from .schemas import NatRuleCreate, NatRulePatch


def _check_port_free(session: Session, network: Network, protocol: str, public_port: int,
                     ignore_rule: str | None) -> None:
    clash = session.scalar(select(NatRule.id).where(
        NatRule.public_ip == network.nat_public_ip, NatRule.protocol == protocol,
        NatRule.public_port == public_port))
    if clash is not None and clash != ignore_rule:
        raise precondition("conflict", f"{protocol} port {public_port} of {network.nat_public_ip} "
                           f"is already forwarded by rule {clash}")


def create_rule(session: Session, network: Network, body: NatRuleCreate) -> NatRule:
    thing = session.scalar(select(Thing).where(Thing.account_id == network.account_id,
                                               Thing.id == body.thing_id).with_for_update())
    if thing is None:
        raise unknown_reference("thing_id", body.thing_id)
    group_network = session.scalar(select(ThingsGroup.network_id).where(
        ThingsGroup.id == thing.things_group_id))
    if group_network != network.id:
        raise precondition("not_on_network", f"Thing {thing.id} is in a group on Network "
                           f"{group_network}, not {network.id}")
    if not thing.ip_locked or thing.ip_address is None:
        raise precondition("ip_not_locked", f"Thing {thing.id} holds no locked IP; lock one "
                           "with PATCH /v1/things/{id} ip_lock first")
    if network.nat_public_ip is None:
        raise precondition("nat_ip_exhausted", f"Network {network.id} has no public NAT address")
    _check_port_free(session, network, body.protocol, body.public_port, None)
    rule = NatRule(id=new_id("nat_rule"), account_id=network.account_id, network_id=network.id,
                   thing_id=thing.id, protocol=body.protocol, public_ip=network.nat_public_ip,
                   public_port=body.public_port, private_port=body.private_port,
                   description=body.description)
    session.add(rule)
    session.flush()
    return rule


def require_rule(session: Session, network: Network, rule_id: str, *,
                 for_update: bool = False) -> NatRule:
    statement = select(NatRule).where(NatRule.account_id == network.account_id,
                                      NatRule.network_id == network.id, NatRule.id == rule_id)
    rule = session.scalar(statement.with_for_update() if for_update else statement)
    if rule is None:
        raise not_found("NAT rule", rule_id)
    return rule


def update_rule(session: Session, network: Network, rule: NatRule, body: NatRulePatch) -> None:
    if body.public_port is not None and body.public_port != rule.public_port:
        _check_port_free(session, network, rule.protocol, body.public_port, rule.id)
        rule.public_port = body.public_port
    if body.private_port is not None:
        rule.private_port = body.private_port
    if body.description is not None:
        rule.description = body.description
    rule.updated_at = utcnow()
    session.flush()


def rules_of_thing(session: Session, thing: Thing) -> list[str]:
    return list(session.scalars(select(NatRule.id).where(NatRule.account_id == thing.account_id,
                                                         NatRule.thing_id == thing.id)))


def delete_rules_of_thing(session: Session, thing: Thing) -> list[str]:
    ids = rules_of_thing(session, thing)
    if ids:
        session.execute(delete(NatRule).where(NatRule.account_id == thing.account_id,
                                              NatRule.thing_id == thing.id))
    return ids


def forward(session: Session, network: Network, protocol: str, public_port: int) -> NatRule | None:
    return session.scalar(select(NatRule).where(
        NatRule.network_id == network.id, NatRule.public_ip == network.nat_public_ip,
        NatRule.protocol == protocol, NatRule.public_port == public_port))
