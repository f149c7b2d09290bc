"""Resource namespaces: `client.things`, `client.networks.nat_rules`, ...

Every method works on both clients: with `Client` it returns the result, with `AsyncClient` an
awaitable of it (lists return a `Pager` / `AsyncPager` either way). Optional arguments left as
None are not sent, so the server's defaults apply and PATCH leaves those fields unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ._core import Composite, Op, Pager, Sleep, clean_body, seg
from .errors import EtagMismatchError, WaitTimeoutError
from .models import (
    Account,
    Apn,
    AuditEntry,
    BillingLine,
    BillingReport,
    BulkAction,
    BulkActionItem,
    Credential,
    CurrentTariff,
    DataSession,
    DisconnectAccepted,
    EvaluateResult,
    Event,
    FirewallRule,
    ImeiChange,
    IpPool,
    IpProfile,
    Me,
    NatRule,
    Network,
    Page,
    Route,
    Sms,
    StateChange,
    Thing,
    ThingsGroup,
    TraceResult,
    Usage,
    User,
    VpnTunnel,
    Webhook,
    WebhookDelivery,
)


class _Caller(Protocol):
    def _do(self, work: Op | Composite[Any]) -> Any: ...
    def _pager(self, make_op: Callable[[str | None], Op], cursor: str | None) -> Any: ...


def _tags(tag: str | Iterable[str] | None) -> list[str] | None:
    if tag is None:
        return None
    return [tag] if isinstance(tag, str) else list(tag)


class _Namespace:
    def __init__(self, caller: _Caller) -> None:
        self._c = caller

    def _do(self, work: Op | Composite[Any]) -> Any:
        return self._c._do(work)

    def _list(self, path: str, model: type, params: Mapping[str, Any] | None = None, *,
              limit: int | None = None, cursor: str | None = None) -> Any:
        base = dict(params or {})

        def make(page_cursor: str | None) -> Op:
            return Op("GET", path, params={**base, "limit": limit, "cursor": page_cursor},
                      model=Page[model])  # type: ignore[valid-type]

        return self._c._pager(make, cursor)

    @staticmethod
    def _patch(path: str, model: type, body: Mapping[str, Any], if_match: str | None) -> Op:
        return Op("PATCH", path, json=clean_body(body), model=model,
                  headers={"If-Match": if_match} if if_match else {})

    @staticmethod
    def _delete(path: str, if_match: str | None) -> Op:
        return Op("DELETE", path, result="none",
                  headers={"If-Match": if_match} if if_match else {})

    @staticmethod
    def _create(path: str, model: type, body: Mapping[str, Any],
                idempotency_key: str | None) -> Op:
        return Op("POST", path, json=clean_body(body), model=model,
                  idempotency_key=idempotency_key)


# Things ---------------------------------------------------------------------------------------

class Things(_Namespace):
    def list(self, *, state: str | None = None, things_group_id: str | None = None,
             tag: str | Iterable[str] | None = None, iccid: str | None = None,
             imsi: str | None = None, imei: str | None = None, ip_address: str | None = None,
             connection_status: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Pager[Thing]:
        """Things matching every filter given (`tag`: all of the tags)."""
        return self._list("/v1/things", Thing, {
            "state": state, "things_group_id": things_group_id, "tag": _tags(tag),
            "iccid": iccid, "imsi": imsi, "imei": imei, "ip_address": ip_address,
            "connection_status": connection_status}, limit=limit, cursor=cursor)

    def get(self, thing_id: str) -> Thing:
        return self._do(Op("GET", f"/v1/things/{seg(thing_id)}", model=Thing))

    def lookup(self, *, iccid: str | None = None, imsi: str | None = None,
               imei: str | None = None, ip_address: str | None = None) -> Thing:
        """The Thing with this identifier (NotFoundError if none)."""
        return self._do(self._lookup({"iccid": iccid, "imsi": imsi, "imei": imei,
                                      "ip_address": ip_address}))

    def _lookup(self, params: dict[str, Any]) -> Composite[Thing]:
        response = yield Op("GET", "/v1/things/lookup", params=params, result="response",
                            expect=frozenset({301, 302, 303, 307}))
        thing = yield Op("GET", response.headers["location"], model=Thing)
        return thing

    def update(self, thing_id: str, *, name: str | None = None, state: str | None = None,
               things_group_id: str | None = None, tags: Sequence[str] | None = None,
               services: Mapping[str, bool] | None = None, imei_lock: bool | None = None,
               ip_lock: Mapping[str, Any] | None = None, if_match: str | None = None) -> Thing:
        body = {"name": name, "state": state, "things_group_id": things_group_id,
                "tags": list(tags) if tags is not None else None,
                "services": dict(services) if services is not None else None,
                "imei_lock": imei_lock, "ip_lock": dict(ip_lock) if ip_lock is not None else None}
        return self._do(self._patch(f"/v1/things/{seg(thing_id)}", Thing, body, if_match))

    def activate(self, thing_id: str, *, if_match: str | None = None) -> Thing:
        return self.update(thing_id, state="ACTIVE", if_match=if_match)

    def suspend(self, thing_id: str, *, if_match: str | None = None) -> Thing:
        return self.update(thing_id, state="SUSPENDED", if_match=if_match)

    def retire(self, thing_id: str, *, if_match: str | None = None) -> Thing:
        """Terminal: releases the IP lock and deletes the Thing's NAT rules."""
        return self.update(thing_id, state="RETIRED", if_match=if_match)

    def move(self, thing_id: str, things_group_id: str, *, if_match: str | None = None) -> Thing:
        return self.update(thing_id, things_group_id=things_group_id, if_match=if_match)

    def set_tags(self, thing_id: str, tags: Sequence[str], *,
                 if_match: str | None = None) -> Thing:
        return self.update(thing_id, tags=tags, if_match=if_match)

    def add_tags(self, thing_id: str, tags: Iterable[str]) -> Thing:
        """Adds tags, keeping the others (read, then update with If-Match; repeats on a race)."""
        extra = list(tags)
        return self._do(self._edit_tags(thing_id, lambda have: have + [
            t for t in dict.fromkeys(extra) if t not in have]))

    def remove_tags(self, thing_id: str, tags: Iterable[str]) -> Thing:
        gone = set(tags)
        return self._do(self._edit_tags(thing_id, lambda have: [t for t in have if t not in gone]))

    def _edit_tags(self, thing_id: str,
                   change: Callable[[list[str]], list[str]]) -> Composite[Thing]:
        path = f"/v1/things/{seg(thing_id)}"
        for attempt in range(5):
            thing = yield Op("GET", path, model=Thing)
            wanted = change(list(thing.tags))
            if sorted(set(wanted)) == sorted(set(thing.tags)):
                return thing
            try:
                updated = yield self._patch(path, Thing, {"tags": wanted}, thing.etag)
            except EtagMismatchError:
                if attempt == 4:
                    raise
                continue
            return updated
        raise AssertionError("unreachable")

    def lock_ip(self, thing_id: str, ip_address: str | None = None) -> Thing:
        """Pins the Thing's address (the current or a given one); NAT rules need it."""
        lock: dict[str, Any] = {"locked": True}
        if ip_address is not None:
            lock["ip_address"] = ip_address
        return self.update(thing_id, ip_lock=lock)

    def unlock_ip(self, thing_id: str) -> Thing:
        return self.update(thing_id, ip_lock={"locked": False})

    def state_history(self, thing_id: str, *, limit: int | None = None,
                      cursor: str | None = None) -> Pager[StateChange]:
        return self._list(f"/v1/things/{seg(thing_id)}/state-history", StateChange,
                          limit=limit, cursor=cursor)

    def imei_history(self, thing_id: str, *, limit: int | None = None,
                     cursor: str | None = None) -> Pager[ImeiChange]:
        return self._list(f"/v1/things/{seg(thing_id)}/imei-history", ImeiChange,
                          limit=limit, cursor=cursor)

    def sessions(self, thing_id: str, *, status: str | None = None, limit: int | None = None,
                 cursor: str | None = None) -> Pager[DataSession]:
        return self._list(f"/v1/things/{seg(thing_id)}/sessions", DataSession,
                          {"status": status}, limit=limit, cursor=cursor)

    def usage(self, thing_id: str, *, from_: Any = None, to: Any = None) -> Usage:
        """Daily usage buckets; `from_`/`to` are dates (or ISO strings)."""
        return self._do(Op("GET", f"/v1/things/{seg(thing_id)}/usage",
                           params={"from": from_, "to": to}, model=Usage))

    def disconnect(self, thing_id: str, *, idempotency_key: str | None = None) -> DisconnectAccepted:
        return self._do(Op("POST", f"/v1/things/{seg(thing_id)}/disconnect",
                           model=DisconnectAccepted, idempotency_key=idempotency_key))

    def send_sms(self, thing_id: str, text: str | None = None, **kwargs: Any) -> Sms:
        return SmsMessages(self._c).send(thing_id, text, **kwargs)

    def sms(self, thing_id: str, *, direction: str | None = None, status: str | None = None,
            limit: int | None = None, cursor: str | None = None) -> Pager[Sms]:
        return self._list(f"/v1/things/{seg(thing_id)}/sms", Sms,
                          {"direction": direction, "status": status}, limit=limit, cursor=cursor)


# Things Groups --------------------------------------------------------------------------------

class Groups(_Namespace):
    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Pager[ThingsGroup]:
        return self._list("/v1/things-groups", ThingsGroup, limit=limit, cursor=cursor)

    def get(self, group_id: str) -> ThingsGroup:
        return self._do(Op("GET", f"/v1/things-groups/{seg(group_id)}", model=ThingsGroup))

    def create(self, name: str, *, description: str | None = None,
               network_id: str | None = None, ip_profile_id: str | None = None,
               idempotency_key: str | None = None) -> ThingsGroup:
        """Without network_id/ip_profile_id the account's defaults are used."""
        return self._do(self._create("/v1/things-groups", ThingsGroup, {
            "name": name, "description": description, "network_id": network_id,
            "ip_profile_id": ip_profile_id}, idempotency_key))

    def update(self, group_id: str, *, name: str | None = None, description: str | None = None,
               network_id: str | None = None, ip_profile_id: str | None = None,
               if_match: str | None = None) -> ThingsGroup:
        return self._do(self._patch(f"/v1/things-groups/{seg(group_id)}", ThingsGroup, {
            "name": name, "description": description, "network_id": network_id,
            "ip_profile_id": ip_profile_id}, if_match))

    def delete(self, group_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(f"/v1/things-groups/{seg(group_id)}", if_match))


# Networks -------------------------------------------------------------------------------------

class _NetworkChild(_Namespace):
    kind = ""
    model: type = object

    def _path(self, network_id: str, child_id: str | None = None) -> str:
        path = f"/v1/networks/{seg(network_id)}/{self.kind}"
        return path if child_id is None else f"{path}/{seg(child_id)}"

    def list(self, network_id: str, *, limit: int | None = None,
             cursor: str | None = None) -> Pager[Any]:
        return self._list(self._path(network_id), self.model, limit=limit, cursor=cursor)

    def get(self, network_id: str, child_id: str) -> Any:
        return self._do(Op("GET", self._path(network_id, child_id), model=self.model))

    def delete(self, network_id: str, child_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(self._path(network_id, child_id), if_match))


class IpPools(_NetworkChild):
    kind, model = "ip-pools", IpPool

    def create(self, network_id: str, *, cidr: str | None = None,
               prefix_length: int | None = None, lease_seconds: int | None = None,
               idempotency_key: str | None = None) -> IpPool:
        """A pool from `cidr` (inside the account allocation) or carved by `prefix_length`."""
        return self._do(self._create(self._path(network_id), IpPool, {
            "cidr": cidr, "prefix_length": prefix_length, "lease_seconds": lease_seconds},
            idempotency_key))

    def update(self, network_id: str, pool_id: str, *, prefix_length: int | None = None,
               lease_seconds: int | None = None, if_match: str | None = None) -> IpPool:
        return self._do(self._patch(self._path(network_id, pool_id), IpPool, {
            "prefix_length": prefix_length, "lease_seconds": lease_seconds}, if_match))


class Routes(_NetworkChild):
    kind, model = "routes", Route

    def create(self, network_id: str, destination: str, *, target: str = "INTERNET",
               vpn_tunnel_id: str | None = None, idempotency_key: str | None = None) -> Route:
        return self._do(self._create(self._path(network_id), Route, {
            "destination": destination, "target": target, "vpn_tunnel_id": vpn_tunnel_id},
            idempotency_key))


class NatRules(_NetworkChild):
    kind, model = "nat-rules", NatRule

    def create(self, network_id: str, *, thing_id: str, public_port: int, private_port: int,
               protocol: str = "TCP", description: str | None = None,
               idempotency_key: str | None = None) -> NatRule:
        """Forwards `public_port` of the Network's NAT address to the Thing's locked IP."""
        return self._do(self._create(self._path(network_id), NatRule, {
            "protocol": protocol, "public_port": public_port, "thing_id": thing_id,
            "private_port": private_port, "description": description}, idempotency_key))

    def update(self, network_id: str, rule_id: str, *, public_port: int | None = None,
               private_port: int | None = None, description: str | None = None,
               if_match: str | None = None) -> NatRule:
        return self._do(self._patch(self._path(network_id, rule_id), NatRule, {
            "public_port": public_port, "private_port": private_port,
            "description": description}, if_match))


class VpnTunnels(_NetworkChild):
    kind, model = "vpn-tunnels", VpnTunnel

    def create(self, network_id: str, *, name: str, remote_gateway: str,
               remote_subnets: Sequence[str], psk: str,
               local_subnets: Sequence[str] | None = None,
               ike_proposals: Sequence[str] | None = None,
               esp_proposals: Sequence[str] | None = None, dpd_seconds: int | None = None,
               idempotency_key: str | None = None) -> VpnTunnel:
        """An IKEv2 tunnel; a route per remote subnet is added with it."""
        return self._do(self._create(self._path(network_id), VpnTunnel, {
            "name": name, "remote_gateway": remote_gateway,
            "remote_subnets": list(remote_subnets), "psk": psk,
            "local_subnets": list(local_subnets) if local_subnets is not None else None,
            "ike_proposals": list(ike_proposals) if ike_proposals is not None else None,
            "esp_proposals": list(esp_proposals) if esp_proposals is not None else None,
            "dpd_seconds": dpd_seconds}, idempotency_key))

    def update(self, network_id: str, tunnel_id: str, *, if_match: str | None = None,
               **fields: Any) -> VpnTunnel:
        """Fields: name, remote_gateway, remote_subnets, local_subnets, ike_proposals,
        esp_proposals, psk, dpd_seconds."""
        return self._do(self._patch(self._path(network_id, tunnel_id), VpnTunnel, fields,
                                    if_match))

    def peer_config(self, network_id: str, tunnel_id: str, *, format: str = "swanctl") -> str:
        """A strongSwan configuration for the customer's side of the tunnel (text)."""
        return self._do(Op("GET", self._path(network_id, tunnel_id) + "/peer-config",
                           params={"format": format}, result="text",
                           headers={"Accept": "text/plain"}))


class Networks(_Namespace):
    def __init__(self, caller: _Caller) -> None:
        super().__init__(caller)
        self.pools = IpPools(caller)
        self.routes = Routes(caller)
        self.nat_rules = NatRules(caller)
        self.vpn_tunnels = VpnTunnels(caller)

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Pager[Network]:
        return self._list("/v1/networks", Network, limit=limit, cursor=cursor)

    def get(self, network_id: str) -> Network:
        return self._do(Op("GET", f"/v1/networks/{seg(network_id)}", model=Network))

    def create(self, name: str, *, device_isolation: bool | None = None,
               dns_servers: Sequence[str] | None = None,
               idempotency_key: str | None = None) -> Network:
        return self._do(self._create("/v1/networks", Network, {
            "name": name, "device_isolation": device_isolation,
            "dns_servers": list(dns_servers) if dns_servers is not None else None},
            idempotency_key))

    def update(self, network_id: str, *, name: str | None = None,
               device_isolation: bool | None = None, dns_servers: Sequence[str] | None = None,
               if_match: str | None = None) -> Network:
        return self._do(self._patch(f"/v1/networks/{seg(network_id)}", Network, {
            "name": name, "device_isolation": device_isolation,
            "dns_servers": list(dns_servers) if dns_servers is not None else None}, if_match))

    def delete(self, network_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(f"/v1/networks/{seg(network_id)}", if_match))

    def peer_config(self, network_id: str, tunnel_id: str, *, format: str = "swanctl") -> str:
        return self.vpn_tunnels.peer_config(network_id, tunnel_id, format=format)

    def trace(self, network_id: str, *, direction: str, protocol: str, source_ip: str,
              destination_ip: str, source_port: int | None = None,
              destination_port: int | None = None) -> TraceResult:
        """What the platform would do with such a packet, stage by stage (nothing is sent)."""
        return self._do(Op("POST", f"/v1/networks/{seg(network_id)}/trace", json=clean_body({
            "direction": direction, "protocol": protocol, "source_ip": source_ip,
            "source_port": source_port, "destination_ip": destination_ip,
            "destination_port": destination_port}), model=TraceResult))


# IP profiles ----------------------------------------------------------------------------------

class FirewallRules(_Namespace):
    def _path(self, profile_id: str, rule_id: str | None = None) -> str:
        path = f"/v1/ip-profiles/{seg(profile_id)}/rules"
        return path if rule_id is None else f"{path}/{seg(rule_id)}"

    def list(self, profile_id: str, *, chain: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Pager[FirewallRule]:
        return self._list(self._path(profile_id), FirewallRule, {"chain": chain},
                          limit=limit, cursor=cursor)

    def get(self, profile_id: str, rule_id: str) -> FirewallRule:
        return self._do(Op("GET", self._path(profile_id, rule_id), model=FirewallRule))

    def create(self, profile_id: str, *, chain: str, action: str, protocol: str | None = None,
               remote_cidr: str | None = None, ports: str | None = None,
               description: str | None = None, position: int | None = None,
               idempotency_key: str | None = None) -> FirewallRule:
        """Appends to the chain (INBOUND|OUTBOUND) unless `position` is given."""
        return self._do(self._create(self._path(profile_id), FirewallRule, {
            "chain": chain, "action": action, "protocol": protocol, "remote_cidr": remote_cidr,
            "ports": ports, "description": description, "position": position},
            idempotency_key))

    def update(self, profile_id: str, rule_id: str, *, if_match: str | None = None,
               **fields: Any) -> FirewallRule:
        """Fields: chain, action, protocol, remote_cidr, ports, description, position."""
        return self._do(self._patch(self._path(profile_id, rule_id), FirewallRule, fields,
                                    if_match))

    def delete(self, profile_id: str, rule_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(self._path(profile_id, rule_id), if_match))


class IpProfiles(_Namespace):
    def __init__(self, caller: _Caller) -> None:
        super().__init__(caller)
        self.rules = FirewallRules(caller)

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Pager[IpProfile]:
        return self._list("/v1/ip-profiles", IpProfile, limit=limit, cursor=cursor)

    def get(self, profile_id: str) -> IpProfile:
        return self._do(Op("GET", f"/v1/ip-profiles/{seg(profile_id)}", model=IpProfile))

    def create(self, name: str, *, description: str | None = None,
               inbound_default: str | None = None, outbound_default: str | None = None,
               idempotency_key: str | None = None) -> IpProfile:
        return self._do(self._create("/v1/ip-profiles", IpProfile, {
            "name": name, "description": description,
            "inbound": {"default_action": inbound_default} if inbound_default else None,
            "outbound": {"default_action": outbound_default} if outbound_default else None},
            idempotency_key))

    def update(self, profile_id: str, *, name: str | None = None,
               description: str | None = None, inbound_default: str | None = None,
               outbound_default: str | None = None, if_match: str | None = None) -> IpProfile:
        return self._do(self._patch(f"/v1/ip-profiles/{seg(profile_id)}", IpProfile, {
            "name": name, "description": description,
            "inbound": {"default_action": inbound_default} if inbound_default else None,
            "outbound": {"default_action": outbound_default} if outbound_default else None},
            if_match))

    def delete(self, profile_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(f"/v1/ip-profiles/{seg(profile_id)}", if_match))

    def evaluate(self, profile_id: str, *, direction: str, protocol: str, remote_ip: str,
                 port: int | None = None) -> EvaluateResult:
        """Which rule (if any) decides a packet, and whether it is allowed."""
        return self._do(Op("POST", f"/v1/ip-profiles/{seg(profile_id)}/evaluate",
                           json=clean_body({"direction": direction, "protocol": protocol,
                                            "remote_ip": remote_ip, "port": port}),
                           model=EvaluateResult))


# SMS ------------------------------------------------------------------------------------------

class SmsMessages(_Namespace):
    def send(self, thing_id: str, text: str | None = None, *, data_base64: str | None = None,
             encoding: str | None = None, validity_seconds: int | None = None,
             idempotency_key: str | None = None) -> Sms:
        """Queues an MT SMS (text, or binary as base64) to an ACTIVE Thing."""
        return self._do(self._create(f"/v1/things/{seg(thing_id)}/sms", Sms, {
            "text": text, "data_base64": data_base64, "encoding": encoding,
            "validity_seconds": validity_seconds}, idempotency_key))

    def list(self, *, thing_id: str | None = None, direction: str | None = None,
             status: str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Pager[Sms]:
        return self._list("/v1/sms", Sms, {"thing_id": thing_id, "direction": direction,
                                           "status": status}, limit=limit, cursor=cursor)

    def get(self, sms_id: str) -> Sms:
        return self._do(Op("GET", f"/v1/sms/{seg(sms_id)}", model=Sms))


# Billing --------------------------------------------------------------------------------------

class Billing(_Namespace):
    def tariff(self) -> CurrentTariff:
        return self._do(Op("GET", "/v1/billing/tariff", model=CurrentTariff))

    @staticmethod
    def _scope(thing_id: str | None, things_group_id: str | None,
               tag: str | None) -> dict[str, Any]:
        return {"thing_id": thing_id, "things_group_id": things_group_id, "tag": tag}

    def current_period(self) -> str:
        """The open cycle's name, YYYY-MM (from the server's clock)."""
        return self._do(self._current_period())

    def _current_period(self) -> Composite[str]:
        response = yield Op("GET", "/v1/billing/reports/current", result="response",
                            expect=frozenset({301, 302, 303, 307}))
        import httpx

        period = httpx.URL(response.headers["location"]).params.get("period")
        if not period:
            raise ValueError(f"unexpected location {response.headers['location']!r}")
        return period

    def report(self, period: str | None = None, *, thing_id: str | None = None,
               things_group_id: str | None = None, tag: str | None = None,
               limit: int | None = None, cursor: str | None = None) -> BillingReport:
        """A cycle's report (default: the open one) with the first page of its lines."""
        params = {"period": period, **self._scope(thing_id, things_group_id, tag),
                  "limit": limit, "cursor": cursor}
        return self._do(self._report(params))

    def _report(self, params: dict[str, Any]) -> Composite[BillingReport]:
        if params["period"] is None:
            params["period"] = yield from self._current_period()
        report = yield Op("GET", "/v1/billing/reports", params=params, model=BillingReport)
        return report

    def lines(self, period: str, *, thing_id: str | None = None,
              things_group_id: str | None = None, tag: str | None = None,
              limit: int | None = None, cursor: str | None = None) -> Pager[BillingLine]:
        """Every line of a report, page by page."""
        params = {"period": period, **self._scope(thing_id, things_group_id, tag)}

        def make(page_cursor: str | None) -> Op:
            return Op("GET", "/v1/billing/reports",
                      params={**params, "limit": limit, "cursor": page_cursor},
                      model=_lines_of_report)

        return self._c._pager(make, cursor)

    def report_csv(self, period: str | None = None, *, thing_id: str | None = None,
                   things_group_id: str | None = None, tag: str | None = None) -> str:
        """Every line of the report as CSV text (the server streams it, unpaged)."""
        return self._do(self._csv({"period": period,
                                   **self._scope(thing_id, things_group_id, tag)}))

    def _csv(self, params: dict[str, Any]) -> Composite[str]:
        if params["period"] is None:
            params["period"] = yield from self._current_period()
        text = yield Op("GET", "/v1/billing/reports", params=params, result="text",
                        headers={"Accept": "text/csv"})
        return text


def _lines_of_report(payload: Any) -> Page[BillingLine]:
    return Page[BillingLine].model_validate(payload["lines"])


# Bulk actions ---------------------------------------------------------------------------------

class BulkActions(_Namespace):
    def create(self, action: str, *, thing_ids: Sequence[str] | None = None,
               tags_all: Sequence[str] | None = None, tags_any: Sequence[str] | None = None,
               things_group_ids: Sequence[str] | None = None,
               filter: Mapping[str, Any] | None = None,
               params: Mapping[str, Any] | None = None, dry_run: bool = False,
               idempotency_key: str | None = None) -> BulkAction:
        """Starts a job over exactly one kind of target; `dry_run` only counts the Things."""
        target: dict[str, Any] = {}
        if thing_ids is not None:
            target["thing_ids"] = list(thing_ids)
        if tags_all is not None or tags_any is not None:
            target["tags"] = clean_body({"all": list(tags_all) if tags_all else None,
                                         "any": list(tags_any) if tags_any else None})
        if things_group_ids is not None:
            target["things_group_ids"] = list(things_group_ids)
        if filter is not None:
            target["filter"] = clean_body(filter)
        body: dict[str, Any] = {"action": action, "target": target, "dry_run": dry_run}
        if params:
            body["params"] = dict(params)
        return self._do(self._create("/v1/bulk-actions", BulkAction, body, idempotency_key))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Pager[BulkAction]:
        return self._list("/v1/bulk-actions", BulkAction, limit=limit, cursor=cursor)

    def get(self, bulk_action_id: str) -> BulkAction:
        return self._do(Op("GET", f"/v1/bulk-actions/{seg(bulk_action_id)}", model=BulkAction))

    def items(self, bulk_action_id: str, *, status: str | None = None,
              limit: int | None = None, cursor: str | None = None) -> Pager[BulkActionItem]:
        return self._list(f"/v1/bulk-actions/{seg(bulk_action_id)}/items", BulkActionItem,
                          {"status": status}, limit=limit, cursor=cursor)

    def cancel(self, bulk_action_id: str) -> BulkAction:
        return self._do(Op("POST", f"/v1/bulk-actions/{seg(bulk_action_id)}/cancel",
                           model=BulkAction))

    def wait(self, bulk_action_id: str, *, poll_interval: float = 0.5,
             timeout: float | None = None,
             progress: Callable[[BulkAction], None] | None = None) -> BulkAction:
        """Polls until the job is COMPLETED, CANCELLED or FAILED; `progress(job)` sees every poll."""
        return self._do(self._wait(bulk_action_id, poll_interval, timeout, progress))

    def _wait(self, bulk_action_id: str, poll_interval: float, timeout: float | None,
              progress: Callable[[BulkAction], None] | None) -> Composite[BulkAction]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = yield Op("GET", f"/v1/bulk-actions/{seg(bulk_action_id)}", model=BulkAction)
            if progress is not None:
                progress(job)
            if job.done:
                return job
            if deadline is not None and time.monotonic() + poll_interval > deadline:
                raise WaitTimeoutError(f"bulk action {bulk_action_id} still {job.status} "
                                       f"({job.processed}/{job.total}) after {timeout} s")
            yield Sleep(poll_interval)


# Webhooks, events -----------------------------------------------------------------------------

class Webhooks(_Namespace):
    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Pager[Webhook]:
        return self._list("/v1/webhooks", Webhook, limit=limit, cursor=cursor)

    def get(self, webhook_id: str) -> Webhook:
        return self._do(Op("GET", f"/v1/webhooks/{seg(webhook_id)}", model=Webhook))

    def create(self, url: str, *, event_types: Sequence[str] | None = None,
               enabled: bool | None = None, secret: str | None = None,
               idempotency_key: str | None = None) -> Webhook:
        """The answer carries `secret` (generated when not given): keep it to verify deliveries."""
        return self._do(self._create("/v1/webhooks", Webhook, {
            "url": url, "event_types": list(event_types) if event_types is not None else None,
            "enabled": enabled, "secret": secret}, idempotency_key))

    def update(self, webhook_id: str, *, url: str | None = None,
               event_types: Sequence[str] | None = None, enabled: bool | None = None,
               secret: str | None = None, if_match: str | None = None) -> Webhook:
        return self._do(self._patch(f"/v1/webhooks/{seg(webhook_id)}", Webhook, {
            "url": url, "event_types": list(event_types) if event_types is not None else None,
            "enabled": enabled, "secret": secret}, if_match))

    def delete(self, webhook_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(f"/v1/webhooks/{seg(webhook_id)}", if_match))

    def deliveries(self, webhook_id: str, *, limit: int | None = None,
                   cursor: str | None = None) -> Pager[WebhookDelivery]:
        return self._list(f"/v1/webhooks/{seg(webhook_id)}/deliveries", WebhookDelivery,
                          limit=limit, cursor=cursor)


class Events(_Namespace):
    def list(self, *, type: str | None = None, thing_id: str | None = None,
             since: datetime | str | None = None, limit: int | None = None,
             cursor: str | None = None) -> Pager[Event]:
        return self._list("/v1/events", Event, {"type": type, "thing_id": thing_id,
                                                "since": since}, limit=limit, cursor=cursor)

    def follow(self, *, type: str | None = None, thing_id: str | None = None,
               since: datetime | str | None = None, poll_interval: float = 2.0) -> Any:
        """Every matching event from `since` on, then new ones as they occur (never ends).

        `for event in client.events.follow(...)` / `async for ...` with AsyncClient.
        """
        return self._c._follow(EventFollower(type, thing_id, since), poll_interval)


class EventFollower:
    """Polling state of `events.follow`: re-reads from slightly before the newest event seen
    (events of concurrent writers may commit out of order) and skips ids already handed out."""

    OVERLAP_SECONDS = 10.0

    def __init__(self, event_type: str | None, thing_id: str | None,
                 since: datetime | str | None) -> None:
        self.filters = {"type": event_type, "thing_id": thing_id}
        self.since: Any = since
        self.cursor: str | None = None
        self.seen: dict[str, datetime] = {}
        self.newest: datetime | None = None

    def op(self) -> Op:
        return Op("GET", "/v1/events", params={**self.filters, "since": self.since,
                                                "cursor": self.cursor, "limit": 200},
                  model=Page[Event])

    def accept(self, page: Page[Event]) -> tuple[list[Event], bool]:
        """The new events of a page, and whether to poll again at once (more pages)."""
        fresh = [e for e in page.items if e.id not in self.seen]
        for event in fresh:
            self.seen[event.id] = event.occurred_at
            if self.newest is None or event.occurred_at > self.newest:
                self.newest = event.occurred_at
        if page.next_cursor:
            self.cursor = page.next_cursor
            return fresh, True
        self.cursor = None
        if self.newest is not None:
            from datetime import timedelta

            floor = self.newest - timedelta(seconds=self.OVERLAP_SECONDS)
            self.since = floor
            self.seen = {k: v for k, v in self.seen.items() if v >= floor}
        return fresh, False


# Account, users -------------------------------------------------------------------------------

class AccountAPI(_Namespace):
    def get(self) -> Account:
        return self._do(Op("GET", "/v1/account", model=Account))

    def update(self, *, name: str | None = None, if_match: str | None = None) -> Account:
        return self._do(self._patch("/v1/account", Account, {"name": name}, if_match))

    def apns(self) -> list[Apn]:
        return self._do(self._apns())

    def _apns(self) -> Composite[list[Apn]]:
        page = yield Op("GET", "/v1/apns", model=Page[Apn])
        return page.items

    def me(self) -> Me:
        return self._do(Op("GET", "/v1/me", model=Me))


class Users(_Namespace):
    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Pager[User]:
        return self._list("/v1/users", User, limit=limit, cursor=cursor)

    def get(self, user_id: str) -> User:
        return self._do(Op("GET", f"/v1/users/{seg(user_id)}", model=User))

    def create(self, email: str, role: str, *, name: str | None = None,
               idempotency_key: str | None = None) -> User:
        return self._do(self._create("/v1/users", User, {"email": email, "role": role,
                                                         "name": name}, idempotency_key))

    def update(self, user_id: str, *, name: str | None = None, role: str | None = None,
               status: str | None = None, if_match: str | None = None) -> User:
        return self._do(self._patch(f"/v1/users/{seg(user_id)}", User,
                                    {"name": name, "role": role, "status": status}, if_match))

    def delete(self, user_id: str, *, if_match: str | None = None) -> None:
        return self._do(self._delete(f"/v1/users/{seg(user_id)}", if_match))

    def credentials(self, user_id: str, *, limit: int | None = None,
                    cursor: str | None = None) -> Pager[Credential]:
        return self._list(f"/v1/users/{seg(user_id)}/credentials", Credential,
                          limit=limit, cursor=cursor)

    def create_credential(self, user_id: str, *, name: str | None = None,
                          idempotency_key: str | None = None) -> Credential:
        """The answer carries `client_secret`, shown this once."""
        return self._do(self._create(f"/v1/users/{seg(user_id)}/credentials", Credential,
                                     {"name": name}, idempotency_key))

    def delete_credential(self, user_id: str, client_id: str) -> None:
        return self._do(self._delete(f"/v1/users/{seg(user_id)}/credentials/{seg(client_id)}",
                                     None))

    def audit_log(self, *, limit: int | None = None,
                  cursor: str | None = None) -> Pager[AuditEntry]:
        return self._list("/v1/audit-log", AuditEntry, limit=limit, cursor=cursor)
