"""IP Profiles: ordered INBOUND/OUTBOUND firewall rules with a default action per chain.

Positions in a chain are always 1..n. Every rule write locks the profile row first, so two
concurrent renumberings of one profile never interleave (SQLite: the single writer lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.errors import bad_field, not_found, precondition
from ..core.ids import new_id
from ..core.paging import Page, decode_cursor, encode_cursor
from ..models import FirewallRule, IpProfile, utcnow
from . import repository
from .evaluate import (
    CHAINS,
    PORTED_PROTOCOLS,
    Packet,
    Rule,
    Verdict,
    evaluate,
    format_ports,
    parse_ports,
)
from .schemas import (
    ChainOut,
    EvaluateRequest,
    ProfileCreate,
    ProfileOut,
    ProfilePatch,
    RuleCreate,
    RuleOut,
    RulePatch,
)

MAX_RULES_PER_CHAIN = 1000


# Views --------------------------------------------------------------------------------------

def rule_view(rule: FirewallRule) -> RuleOut:
    return RuleOut(id=rule.id, chain=rule.chain, position=rule.position,  # type: ignore[arg-type]
                   action=rule.action, protocol=rule.protocol,  # type: ignore[arg-type]
                   remote_cidr=rule.remote_cidr, ports=format_ports(rule.port_from, rule.port_to),
                   description=rule.description, created_at=rule.created_at,
                   updated_at=rule.updated_at)


def views(session: Session, account_id: str, profiles: Sequence[IpProfile]) -> list[ProfileOut]:
    ids = [p.id for p in profiles]
    counts = repository.group_counts(session, account_id, ids)
    chains: dict[tuple[str, str], list[RuleOut]] = {}
    for rule in repository.rules_of(session, account_id, ids):
        chains.setdefault((rule.ip_profile_id, rule.chain), []).append(rule_view(rule))
    return [ProfileOut(
        id=p.id, name=p.name, description=p.description, is_default=p.is_default,
        inbound=ChainOut(default_action=p.inbound_default_action,  # type: ignore[arg-type]
                         rules=chains.get((p.id, "INBOUND"), [])),
        outbound=ChainOut(default_action=p.outbound_default_action,  # type: ignore[arg-type]
                          rules=chains.get((p.id, "OUTBOUND"), [])),
        things_group_count=counts[p.id], created_at=p.created_at, updated_at=p.updated_at)
        for p in profiles]


def view(session: Session, account_id: str, profile: IpProfile) -> ProfileOut:
    return views(session, account_id, [profile])[0]


# Profiles -----------------------------------------------------------------------------------

def require_profile(session: Session, account_id: str, profile_id: str, *,
                    for_update: bool = False) -> IpProfile:
    profile = repository.get_profile(session, account_id, profile_id, for_update=for_update)
    if profile is None:
        raise not_found("IP profile", profile_id)
    return profile


def create_profile(session: Session, account_id: str, body: ProfileCreate) -> IpProfile:
    profile = IpProfile(id=new_id("ip_profile"), account_id=account_id, name=body.name,
                        description=body.description, is_default=False,
                        inbound_default_action=body.inbound.default_action,
                        outbound_default_action=body.outbound.default_action)
    session.add(profile)
    session.flush()
    return profile


def update_profile(session: Session, profile: IpProfile, body: ProfilePatch) -> None:
    if body.name is not None:
        profile.name = body.name
    if body.description is not None:
        profile.description = body.description
    if body.inbound is not None and body.inbound.default_action is not None:
        profile.inbound_default_action = body.inbound.default_action
    if body.outbound is not None and body.outbound.default_action is not None:
        profile.outbound_default_action = body.outbound.default_action
    session.flush()


def delete_profile(session: Session, account_id: str, profile: IpProfile) -> None:
    if profile.is_default:
        raise precondition("default_resource",
                           f"{profile.id} is the account's default IP profile")
    count = repository.group_counts(session, account_id, [profile.id])[profile.id]
    if count:
        raise precondition("in_use", f"IP profile {profile.id} is used by {count} Things "
                                     "Group(s); move them to another profile first")
    repository.delete_rules(session, profile.id)
    session.delete(profile)
    try:
        session.flush()
    except IntegrityError:
        # A group took this profile between the count and the delete.
        raise precondition("in_use", f"IP profile {profile.id} is used by a Things Group") from None


# Rules --------------------------------------------------------------------------------------

def require_rule(session: Session, account_id: str, profile_id: str,
                 rule_id: str) -> FirewallRule:
    rule = repository.get_rule(session, account_id, profile_id, rule_id)
    if rule is None:
        raise not_found("firewall rule", rule_id)
    return rule


def _check_ports(protocol: str, ports: str | None) -> tuple[int | None, int | None]:
    if ports is None:
        return None, None
    if protocol not in PORTED_PROTOCOLS:
        raise bad_field("ports", f"ports ({ports!r}) apply only to TCP and UDP rules, "
                                 f"not {protocol}")
    return parse_ports(ports)


def _check_position(position: int, last: int) -> None:
    if position > last:
        raise bad_field("position", f"position {position} is beyond the chain: it must be "
                                    f"between 1 and {last}")


def _check_room(session: Session, profile: IpProfile, chain: str) -> int:
    size = repository.chain_size(session, profile.id, chain)
    if size >= MAX_RULES_PER_CHAIN:
        raise precondition("quota_exceeded",
                           f"the {chain} chain of IP profile {profile.id} already holds "
                           f"{size} rules, the most a chain may hold "
                           f"({MAX_RULES_PER_CHAIN}); delete or merge rules first")
    return size


def create_rule(session: Session, account_id: str, profile: IpProfile,
                body: RuleCreate) -> FirewallRule:
    port_from, port_to = _check_ports(body.protocol, body.ports)
    size = _check_room(session, profile, body.chain)
    position = body.position if body.position is not None else size + 1
    _check_position(position, size + 1)
    repository.shift(session, profile.id, body.chain, low=position, high=None, delta=1)
    rule = FirewallRule(id=new_id("firewall_rule"), account_id=account_id,
                        ip_profile_id=profile.id, chain=body.chain, position=position,
                        action=body.action, protocol=body.protocol,
                        remote_cidr=body.remote_cidr, port_from=port_from, port_to=port_to,
                        description=body.description)
    session.add(rule)
    profile.updated_at = utcnow()
    session.flush()
    return rule


def update_rule(session: Session, profile: IpProfile, rule: FirewallRule,
                body: RulePatch) -> None:
    given = body.model_fields_set
    if not given:
        return
    protocol = body.protocol if body.protocol is not None else rule.protocol
    ports = body.ports if "ports" in given else format_ports(rule.port_from, rule.port_to)
    port_from, port_to = _check_ports(protocol, ports)
    chain = body.chain if body.chain is not None else rule.chain
    if chain != rule.chain:
        size = _check_room(session, profile, chain)
        position = body.position if body.position is not None else size + 1
        _check_position(position, size + 1)
        repository.shift(session, profile.id, rule.chain, low=rule.position + 1, high=None,
                         delta=-1)
        repository.shift(session, profile.id, chain, low=position, high=None, delta=1)
    elif body.position is not None and body.position != rule.position:
        position = body.position
        _check_position(position, repository.chain_size(session, profile.id, chain))
        if position < rule.position:
            repository.shift(session, profile.id, chain, low=position,
                             high=rule.position - 1, delta=1)
        else:
            repository.shift(session, profile.id, chain, low=rule.position + 1,
                             high=position, delta=-1)
    else:
        position = rule.position
    rule.chain, rule.position = chain, position
    rule.protocol, rule.port_from, rule.port_to = protocol, port_from, port_to
    for field in ("action", "remote_cidr", "description"):
        value = getattr(body, field)
        if value is not None:
            setattr(rule, field, value)
    rule.updated_at = utcnow()
    profile.updated_at = utcnow()
    session.flush()


def delete_rule(session: Session, profile: IpProfile, rule: FirewallRule) -> None:
    chain, position = rule.chain, rule.position
    session.delete(rule)
    session.flush()
    repository.shift(session, profile.id, chain, low=position + 1, high=None, delta=-1)
    profile.updated_at = utcnow()
    session.flush()


def rules_page(session: Session, account_id: str, profile: IpProfile, *, chain: str | None,
               limit: int, cursor: str | None) -> Page[FirewallRule]:
    after: tuple[str, int] | None = None
    if cursor:
        text = decode_cursor(cursor)
        after_chain, _, after_position = text.partition(":")
        if after_chain not in CHAINS or not after_position.isdigit():
            raise bad_field("cursor", f"{cursor!r} is not a cursor this API handed out")
        after = (after_chain, int(after_position))
    rows = repository.rules_page(session, account_id, profile.id, chain=chain, after=after,
                                 limit=limit + 1)
    if len(rows) > limit:
        last = rows[limit - 1]
        return Page(rows[:limit], encode_cursor(f"{last.chain}:{last.position}"))
    return Page(rows, None)


# Evaluation ---------------------------------------------------------------------------------

def evaluate_chain(session: Session, account_id: str, ip_profile_id: str, direction: str,
                   protocol: str, remote_ip: str | IPv4Address,
                   port: int | None) -> tuple[str, str | None, str]:
    """First-match verdict of one chain of a profile: (action, rule id or None, detail).

    The packet trace calls this. `remote_ip` is the packet's source for INBOUND and its
    destination for OUTBOUND; `port` is the Thing's port for INBOUND and the remote port for
    OUTBOUND (ignored for ICMP). One query reads the default action and the chain.
    """
    if direction not in CHAINS:
        raise ValueError(f"direction must be one of {CHAINS}, not {direction!r}")
    rows = repository.chain_rows(session, account_id, ip_profile_id, direction)
    if not rows:
        raise not_found("IP profile", ip_profile_id)
    rules = [Rule(id=r.id, position=r.position, action=r.action, protocol=r.protocol,
                  remote_cidr=r.remote_cidr, port_from=r.port_from, port_to=r.port_to)
             for r in rows if r.id is not None]
    packet = Packet(protocol, remote_ip, port if protocol in PORTED_PROTOCOLS else None)
    verdict: Verdict = evaluate(rules, rows[0].default_action, packet,
                                chain=direction)
    return verdict.action, verdict.rule_id, verdict.detail


def check_packet(body: EvaluateRequest) -> None:
    if body.protocol in PORTED_PROTOCOLS and body.port is None:
        raise bad_field("port", f"port is required for {body.protocol}")
    if body.protocol not in PORTED_PROTOCOLS and body.port is not None:
        raise bad_field("port", f"port ({body.port}) applies only to TCP and UDP, "
                                f"not {body.protocol}")
