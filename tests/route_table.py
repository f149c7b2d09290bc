"""Every /v1 route of the app: who may call it and how to build a valid request for it.

`tests/test_route_matrix.py` checks this table against `app.routes`, so a new route fails the
suite until it has a row here. A row's request must succeed for every role it allows: the
matrix sends it, so a 403 or a 404 on a foreign id always means what the test says it means.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from simplane.accounts.service import create_account
from simplane.billing.cycles import period_of
from simplane.core.ids import new_id
from simplane.core.security import new_client_id
from simplane.models import Base, utcnow
from simplane.radius import service as radius
from simplane.radius.attributes import AccountingRequest


def _root_conftest():  # type: ignore[no-untyped-def]
    # Every conftest.py outside a package is imported as `conftest` and pytest swaps that module
    # as it meets each one, so `import conftest` may find another directory's: load ours by path.
    spec = importlib.util.spec_from_file_location("_simplane_root_conftest",
                                                  Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


_conftest = _root_conftest()
Backend, Tenant = _conftest.Backend, _conftest.Tenant

ROLES = ("admin", "manager", "viewer", "billing")
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
WRITERS = frozenset({"admin", "manager"})
READERS = frozenset({"admin", "manager", "viewer"})


def open_tenant(base_url: str, backend: Backend) -> Tenant:
    """`new_tenant` for fixtures wider than one test."""
    with backend.database.transaction() as session:
        created = create_account(
            session, backend.settings, name=f"Matrix {secrets.token_hex(3)}",
            admin_email=f"admin-{secrets.token_hex(6)}@example.com")
    return Tenant(base_url, backend, created.account.id, created.admin.id, created.client_id,
                  created.client_secret)


_numbers = itertools.count(1)


def number() -> int:
    return next(_numbers)


def unique(prefix: str) -> str:
    return f"{prefix}-{number()}-{secrets.token_hex(3)}"


def subnet() -> str:
    """A /24 no other call got: routes and VPN remote subnets of one Network must differ."""
    n = number()
    return f"100.{64 + n // 256}.{n % 256}.0/24"


def public_port() -> int:
    """A port no other NAT rule forwards."""
    return 20000 + number()


def created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


PSK = "matrix-pre-shared-key"  # every tunnel's: a secret no reader but admin/manager may see


def add_network(tenant: Tenant) -> dict:
    return created(tenant.admin.post("/v1/networks", json={"name": unique("net")}))


def add_pool(tenant: Tenant, network_id: str) -> dict:
    return created(tenant.admin.post(f"/v1/networks/{network_id}/ip-pools",
                                     json={"prefix_length": 29}))


def add_route(tenant: Tenant, network_id: str) -> dict:
    return created(tenant.admin.post(f"/v1/networks/{network_id}/routes", json={
        "destination": subnet(), "target": "INTERNET"}))


def nat_rule_body(thing_id: str) -> dict:
    return {"protocol": "TCP", "public_port": public_port(), "thing_id": thing_id,
            "private_port": 22}


def add_nat_rule(tenant: Tenant, network_id: str, thing_id: str) -> dict:
    return created(tenant.admin.post(f"/v1/networks/{network_id}/nat-rules",
                                     json=nat_rule_body(thing_id)))


def tunnel_body() -> dict:
    return {"name": unique("vpn"), "remote_gateway": "8.8.4.4", "remote_subnets": [subnet()],
            "psk": PSK}


def add_tunnel(tenant: Tenant, network_id: str) -> dict:
    return created(tenant.admin.post(f"/v1/networks/{network_id}/vpn-tunnels",
                                     json=tunnel_body()))


def add_profile(tenant: Tenant) -> dict:
    return created(tenant.admin.post("/v1/ip-profiles", json={"name": unique("ipp")}))


def add_firewall_rule(tenant: Tenant, profile_id: str) -> dict:
    return created(tenant.admin.post(f"/v1/ip-profiles/{profile_id}/rules", json={
        "chain": "INBOUND", "action": "ALLOW", "protocol": "TCP", "ports": "22"}))


def activate(tenant: Tenant, thing: dict) -> dict:
    response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class Estate:
    """One tenant's Networks, IP Profiles and SMS resources beyond the defaults, one of each."""

    network: dict
    pool: dict
    nat_thing: dict  # in a group on `network`, with a locked IP: NAT rules need one
    route: dict
    nat_rule: dict
    tunnel: dict
    profile: dict
    firewall_rule: dict
    sms: dict  # to the tenant's ACTIVE Thing
    # A dry run (COMPLETED at once) and a disabled webhook: no worker of a lifespan-on server on
    # this database ever changes them while the matrix compares the account's rows.
    bulk_action: dict
    webhook: dict

    def ids(self) -> dict[str, str]:
        """Each resource's id by the collection it sits in (a PARAMS key)."""
        return {"networks": self.network["id"], "ip-pools": self.pool["id"],
                "routes": self.route["id"], "nat-rules": self.nat_rule["id"],
                "vpn-tunnels": self.tunnel["id"], "ip-profiles": self.profile["id"],
                "rules": self.firewall_rule["id"], "sms": self.sms["id"],
                "bulk-actions": self.bulk_action["id"], "webhooks": self.webhook["id"]}


def furnish(tenant: Tenant, active: dict) -> Estate:
    """An Estate for the tenant; `active` is an ACTIVE Thing of its, to send the SMS to."""
    admin = tenant.admin
    network = add_network(tenant)
    pool = add_pool(tenant, network["id"])
    group = created(admin.post("/v1/things-groups", json={
        "name": unique("g"), "network_id": network["id"]}))
    nat_thing = tenant.things(1)[0]
    for change in ({"things_group_id": group["id"]}, {"ip_lock": {"locked": True}}):
        response = admin.patch(f"/v1/things/{nat_thing['id']}", json=change)
        assert response.status_code == 200, response.text
    nat_thing = response.json()
    sms = admin.post(f"/v1/things/{active['id']}/sms", json={"text": "hello"})
    assert sms.status_code == 202, sms.text
    profile = add_profile(tenant)
    bulk = admin.post("/v1/bulk-actions", json=bulk_body(active["id"]))
    assert bulk.status_code == 202, bulk.text
    return Estate(network, pool, nat_thing, add_route(tenant, network["id"]),
                  add_nat_rule(tenant, network["id"], nat_thing["id"]),
                  add_tunnel(tenant, network["id"]), profile,
                  add_firewall_rule(tenant, profile["id"]), sms.json(), bulk.json(),
                  add_webhook(tenant))


def bulk_body(thing_id: str) -> dict:
    return {"action": "SUSPEND", "target": {"thing_ids": [thing_id]}, "dry_run": True}


WEBHOOK_BODY = {"url": "http://127.0.0.1:9/matrix", "enabled": False}


def add_webhook(tenant: Tenant) -> dict:
    return created(tenant.admin.post("/v1/webhooks", json=WEBHOOK_BODY))


@dataclass
class World:
    """Tenant A with a client per role and one resource of each kind; tenant B's admin."""

    a: Tenant
    b: Tenant
    clients: dict[str, httpx.Client]
    thing: dict
    group: dict
    user: dict
    credential: dict
    mine: Estate
    b_thing: dict
    b_group: dict
    b_user: dict
    b_credential: dict
    theirs: Estate

    @staticmethod
    def unique(prefix: str) -> str:
        return unique(prefix)

    def fresh_group(self, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post("/v1/things-groups", json={"name": unique("g")}))

    def fresh_user(self, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post("/v1/users", json={
            "email": f"{unique('u')}@example.com", "name": "matrix", "role": "viewer"}))

    def fresh_credential(self, user_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post(f"/v1/users/{user_id}/credentials", json={}))


def build_world(base_url: str, backend: Backend) -> World:
    a, b = open_tenant(base_url, backend), open_tenant(base_url, backend)
    clients = {role: a.client(role) for role in ROLES}
    # An ACTIVE Thing gives A a state change and an event, so every list has something of A's;
    # and only an ACTIVE Thing may be sent an SMS.
    thing, b_thing = (activate(t, t.things(1)[0]) for t in (a, b))
    world = World(a, b, clients, thing, {}, {}, {}, furnish(a, thing),
                  b_thing, {}, {}, {}, furnish(b, b_thing))
    world.group = world.fresh_group()
    world.user = world.fresh_user()
    world.credential = world.fresh_credential(world.user["id"])
    world.b_group = world.fresh_group(b)
    world.b_user = world.fresh_user(b)
    world.b_credential = world.fresh_credential(world.b_user["id"], b)
    for active in (thing, b_thing):
        attach(backend, active)
    return world


def attach(backend: Backend, thing: dict) -> None:
    """What the RADIUS server does on Accounting-Start: an open data session with usage and an
    IMEI, so the session routes have rows to leak and a disconnect is accepted (202), not
    refused as not_attached."""
    with backend.database.transaction() as session:
        radius.account(session, AccountingRequest(
            status_type=radius.START, acct_session_id=secrets.token_hex(8), imsi=thing["imsi"],
            framed_ip=None, input_octets=1000, output_octets=2000, event_time=None,
            sgsn_mcc_mnc="20404", rat_type=6, imeisv="3566610812345601", terminate_cause=None,
            nas_address="192.0.2.10", nas_identifier="matrix"))


# Path parameters: A's id of that kind (shared, or built fresh for routes that destroy it), B's
# own id of that kind, and an id of the same shape that names nothing. The kind of an id is the
# collection it sits in: `{rule_id}` names a NAT rule under nat-rules/ and a firewall rule under
# rules/.
@dataclass(frozen=True)
class Param:
    shared: Callable[[World], str]
    fresh: Callable[[World, dict[str, str]], str]
    own: Callable[[World], str]
    unknown: Callable[[], str]


PARAMS: dict[str, Param] = {
    "things": Param(lambda w: w.thing["id"], lambda w, _: w.thing["id"],
                    lambda w: w.b_thing["id"], lambda: new_id("thing")),
    "things-groups": Param(lambda w: w.group["id"], lambda w, _: w.fresh_group()["id"],
                           lambda w: w.b_group["id"], lambda: new_id("things_group")),
    "users": Param(lambda w: w.user["id"], lambda w, _: w.fresh_user()["id"],
                   lambda w: w.b_user["id"], lambda: new_id("user")),
    "credentials": Param(lambda w: w.credential["client_id"],
                         lambda w, ids: w.fresh_credential(ids["user_id"])["client_id"],
                         lambda w: w.b_credential["client_id"], new_client_id),
    "networks": Param(lambda w: w.mine.network["id"], lambda w, _: add_network(w.a)["id"],
                      lambda w: w.theirs.network["id"], lambda: new_id("network")),
    "ip-pools": Param(lambda w: w.mine.pool["id"],
                      lambda w, ids: add_pool(w.a, ids["network_id"])["id"],
                      lambda w: w.theirs.pool["id"], lambda: new_id("ip_pool")),
    "routes": Param(lambda w: w.mine.route["id"],
                    lambda w, ids: add_route(w.a, ids["network_id"])["id"],
                    lambda w: w.theirs.route["id"], lambda: new_id("route")),
    "nat-rules": Param(lambda w: w.mine.nat_rule["id"],
                       lambda w, ids: add_nat_rule(w.a, ids["network_id"],
                                                   w.mine.nat_thing["id"])["id"],
                       lambda w: w.theirs.nat_rule["id"], lambda: new_id("nat_rule")),
    "vpn-tunnels": Param(lambda w: w.mine.tunnel["id"],
                         lambda w, ids: add_tunnel(w.a, ids["network_id"])["id"],
                         lambda w: w.theirs.tunnel["id"], lambda: new_id("vpn_tunnel")),
    "ip-profiles": Param(lambda w: w.mine.profile["id"], lambda w, _: add_profile(w.a)["id"],
                         lambda w: w.theirs.profile["id"], lambda: new_id("ip_profile")),
    "rules": Param(lambda w: w.mine.firewall_rule["id"],
                   lambda w, ids: add_firewall_rule(w.a, ids["profile_id"])["id"],
                   lambda w: w.theirs.firewall_rule["id"], lambda: new_id("firewall_rule")),
    "sms": Param(lambda w: w.mine.sms["id"], lambda w, _: w.mine.sms["id"],
                 lambda w: w.theirs.sms["id"], lambda: new_id("sms")),
    "bulk-actions": Param(lambda w: w.mine.bulk_action["id"],
                          lambda w, _: w.mine.bulk_action["id"],
                          lambda w: w.theirs.bulk_action["id"], lambda: new_id("bulk_action")),
    "webhooks": Param(lambda w: w.mine.webhook["id"], lambda w, _: add_webhook(w.a)["id"],
                      lambda w: w.theirs.webhook["id"], lambda: new_id("webhook")),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    roles: frozenset[str] | None  # None: public, no token
    body: Callable[[World], dict[str, Any]] = lambda _: {}  # httpx request keyword arguments
    destroys: bool = False  # each call needs its own fresh resource (the path's last id)

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def kinds(self) -> dict[str, str]:
        """Each path parameter's PARAMS key: the collection segment before it."""
        return {name: kind for kind, name in re.findall(r"([\w-]+)/{(\w+)}", self.path)}

    def param(self, name: str) -> Param:
        return PARAMS[self.kinds[name]]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def ids(self, world: World) -> dict[str, str]:
        """A's ids for the path: a fresh last one when the call destroys its target."""
        ids: dict[str, str] = {}
        for name in self.params:
            param = self.param(name)
            last = name == self.params[-1]
            ids[name] = param.fresh(world, ids) if self.destroys and last else param.shared(world)
        return ids

    def send(self, client: httpx.Client, world: World, ids: dict[str, str]) -> httpx.Response:
        return client.request(self.method, self.path.format(**ids), **self.body(world))


def _token_form(world: World) -> dict[str, Any]:
    return {"data": {"grant_type": "client_credentials", "client_id": world.a.client_id,
                     "client_secret": world.a.client_secret}}


ROUTES: list[Route] = [
    Route("POST", "/v1/oauth2/token", None, _token_form),
    Route("GET", "/v1/me", EVERYONE),
    # users, credentials and the audit log: admin only (api.md §2)
    Route("GET", "/v1/users", ADMIN),
    Route("POST", "/v1/users", ADMIN, lambda w: {"json": {
        "email": f"{w.unique('new')}@example.com", "name": "new", "role": "viewer"}}),
    Route("GET", "/v1/users/{user_id}", ADMIN),
    Route("PATCH", "/v1/users/{user_id}", ADMIN, lambda w: {"json": {"name": w.unique("n")}}),
    Route("DELETE", "/v1/users/{user_id}", ADMIN, destroys=True),
    Route("GET", "/v1/users/{user_id}/credentials", ADMIN),
    Route("POST", "/v1/users/{user_id}/credentials", ADMIN, lambda w: {"json": {"name": "m"}}),
    Route("DELETE", "/v1/users/{user_id}/credentials/{client_id}", ADMIN, destroys=True),
    Route("GET", "/v1/audit-log", ADMIN),
    # account and APN (api.md §3)
    Route("GET", "/v1/account", EVERYONE),
    Route("PATCH", "/v1/account", ADMIN, lambda w: {"json": {"name": w.unique("Account")}}),
    Route("GET", "/v1/apns", READERS),
    # Things (api.md §4): billing reads them too
    Route("GET", "/v1/things", EVERYONE),
    Route("GET", "/v1/things/lookup", EVERYONE, lambda w: {"params": {"iccid": w.thing["iccid"]}}),
    Route("GET", "/v1/things/{thing_id}", EVERYONE),
    Route("PATCH", "/v1/things/{thing_id}", WRITERS, lambda w: {"json": {"name": w.unique("t")}}),
    Route("GET", "/v1/things/{thing_id}/state-history", EVERYONE),
    Route("GET", "/v1/things/{thing_id}/sessions", EVERYONE),
    Route("GET", "/v1/things/{thing_id}/usage", EVERYONE),
    Route("GET", "/v1/things/{thing_id}/imei-history", EVERYONE),
    # The Thing holds an open session that no worker ever closes here: every call is accepted.
    Route("POST", "/v1/things/{thing_id}/disconnect", WRITERS),
    # Things Groups (api.md §5)
    Route("GET", "/v1/things-groups", EVERYONE),
    Route("POST", "/v1/things-groups", WRITERS, lambda w: {"json": {"name": w.unique("g")}}),
    Route("GET", "/v1/things-groups/{group_id}", EVERYONE),
    Route("PATCH", "/v1/things-groups/{group_id}", WRITERS,
          lambda w: {"json": {"description": w.unique("d")}}),
    Route("DELETE", "/v1/things-groups/{group_id}", WRITERS, destroys=True),
    # Networks (api.md, network.md): networks:read for viewers, networks:write for managers;
    # the peer configuration and the packet trace are reads
    Route("GET", "/v1/networks", READERS),
    Route("POST", "/v1/networks", WRITERS, lambda w: {"json": {"name": w.unique("net")}}),
    Route("GET", "/v1/networks/{network_id}", READERS),
    Route("PATCH", "/v1/networks/{network_id}", WRITERS,
          lambda w: {"json": {"name": w.unique("net")}}),
    Route("DELETE", "/v1/networks/{network_id}", WRITERS, destroys=True),
    Route("GET", "/v1/networks/{network_id}/ip-pools", READERS),
    Route("POST", "/v1/networks/{network_id}/ip-pools", WRITERS,
          lambda w: {"json": {"prefix_length": 29}}),
    Route("GET", "/v1/networks/{network_id}/ip-pools/{pool_id}", READERS),
    Route("PATCH", "/v1/networks/{network_id}/ip-pools/{pool_id}", WRITERS,
          lambda w: {"json": {"lease_seconds": 3600 + number()}}),
    Route("DELETE", "/v1/networks/{network_id}/ip-pools/{pool_id}", WRITERS, destroys=True),
    Route("GET", "/v1/networks/{network_id}/routes", READERS),
    Route("POST", "/v1/networks/{network_id}/routes", WRITERS,
          lambda w: {"json": {"destination": subnet(), "target": "INTERNET"}}),
    Route("GET", "/v1/networks/{network_id}/routes/{route_id}", READERS),
    Route("DELETE", "/v1/networks/{network_id}/routes/{route_id}", WRITERS, destroys=True),
    Route("GET", "/v1/networks/{network_id}/nat-rules", READERS),
    Route("POST", "/v1/networks/{network_id}/nat-rules", WRITERS,
          lambda w: {"json": nat_rule_body(w.mine.nat_thing["id"])}),
    Route("GET", "/v1/networks/{network_id}/nat-rules/{rule_id}", READERS),
    Route("PATCH", "/v1/networks/{network_id}/nat-rules/{rule_id}", WRITERS,
          lambda w: {"json": {"description": w.unique("d")}}),
    Route("DELETE", "/v1/networks/{network_id}/nat-rules/{rule_id}", WRITERS, destroys=True),
    Route("GET", "/v1/networks/{network_id}/vpn-tunnels", READERS),
    Route("POST", "/v1/networks/{network_id}/vpn-tunnels", WRITERS,
          lambda w: {"json": tunnel_body()}),
    Route("GET", "/v1/networks/{network_id}/vpn-tunnels/{tunnel_id}", READERS),
    Route("PATCH", "/v1/networks/{network_id}/vpn-tunnels/{tunnel_id}", WRITERS,
          lambda w: {"json": {"name": w.unique("vpn")}}),
    Route("DELETE", "/v1/networks/{network_id}/vpn-tunnels/{tunnel_id}", WRITERS,
          destroys=True),
    Route("GET", "/v1/networks/{network_id}/vpn-tunnels/{tunnel_id}/peer-config", READERS),
    Route("POST", "/v1/networks/{network_id}/trace", READERS, lambda w: {"json": {
        "direction": "OUTBOUND", "protocol": "TCP", "source_ip": w.mine.nat_thing["ip_address"],
        "source_port": 40000, "destination_ip": "8.8.8.8", "destination_port": 443}}),
    # IP Profiles (api.md): ip_profiles:read / ip_profiles:write; evaluate is a read
    Route("GET", "/v1/ip-profiles", READERS),
    Route("POST", "/v1/ip-profiles", WRITERS, lambda w: {"json": {"name": w.unique("ipp")}}),
    Route("GET", "/v1/ip-profiles/{profile_id}", READERS),
    Route("PATCH", "/v1/ip-profiles/{profile_id}", WRITERS,
          lambda w: {"json": {"description": w.unique("d")}}),
    Route("DELETE", "/v1/ip-profiles/{profile_id}", WRITERS, destroys=True),
    Route("GET", "/v1/ip-profiles/{profile_id}/rules", READERS),
    Route("POST", "/v1/ip-profiles/{profile_id}/rules", WRITERS,
          lambda w: {"json": {"chain": "OUTBOUND", "action": "DENY", "protocol": "UDP",
                              "ports": "53"}}),
    Route("GET", "/v1/ip-profiles/{profile_id}/rules/{rule_id}", READERS),
    Route("PATCH", "/v1/ip-profiles/{profile_id}/rules/{rule_id}", WRITERS,
          lambda w: {"json": {"description": w.unique("d")}}),
    Route("DELETE", "/v1/ip-profiles/{profile_id}/rules/{rule_id}", WRITERS, destroys=True),
    Route("POST", "/v1/ip-profiles/{profile_id}/evaluate", READERS, lambda w: {"json": {
        "direction": "INBOUND", "protocol": "TCP", "remote_ip": "192.0.2.1", "port": 22}}),
    # SMS (api.md): sms:read / sms:write, so not billing
    Route("POST", "/v1/things/{thing_id}/sms", WRITERS,
          lambda w: {"json": {"text": w.unique("sms")}}),
    Route("GET", "/v1/things/{thing_id}/sms", READERS),
    Route("GET", "/v1/sms", READERS),
    Route("GET", "/v1/sms/{sms_id}", READERS),
    # Network credentials only (an SMSC delivering MO messages): every customer token is refused
    # whatever its role. tests/sms/test_network.py covers the network credential's side.
    Route("POST", "/v1/network/sms", frozenset(),
          lambda w: {"json": {"imsi": w.thing["imsi"], "text": w.unique("mo")}}),
    # events (api.md §11)
    Route("GET", "/v1/events", READERS),
    # billing (api.md §9): every role reads it; tests/billing covers the reports themselves
    Route("GET", "/v1/billing/tariff", EVERYONE),
    Route("GET", "/v1/billing/reports", EVERYONE,
          lambda w: {"params": {"period": period_of(utcnow())}}),
    Route("GET", "/v1/billing/reports/current", EVERYONE),
    # Bulk actions (api.md §10): bulk:read / bulk:write; cancelling the finished dry run is a
    # no-op that answers it
    Route("POST", "/v1/bulk-actions", WRITERS, lambda w: {"json": bulk_body(w.thing["id"])}),
    Route("GET", "/v1/bulk-actions", READERS),
    Route("GET", "/v1/bulk-actions/{bulk_action_id}", READERS),
    Route("GET", "/v1/bulk-actions/{bulk_action_id}/items", READERS),
    Route("POST", "/v1/bulk-actions/{bulk_action_id}/cancel", WRITERS),
    # webhooks (api.md §11): webhooks:read / webhooks:write
    Route("GET", "/v1/webhooks", READERS),
    Route("POST", "/v1/webhooks", WRITERS, lambda w: {"json": WEBHOOK_BODY}),
    Route("GET", "/v1/webhooks/{webhook_id}", READERS),
    Route("PATCH", "/v1/webhooks/{webhook_id}", WRITERS,
          lambda w: {"json": {"url": f"http://127.0.0.1:9/{w.unique('hook')}"}}),
    Route("DELETE", "/v1/webhooks/{webhook_id}", WRITERS, destroys=True),
    Route("GET", "/v1/webhooks/{webhook_id}/deliveries", READERS),
]

# Where each id kind can be read back, to compare its ETag before and after a foreign request.
READ_BACK = {"things": "/v1/things/{}", "things-groups": "/v1/things-groups/{}",
             "users": "/v1/users/{}", "networks": "/v1/networks/{}",
             "ip-profiles": "/v1/ip-profiles/{}", "sms": "/v1/sms/{}",
             "bulk-actions": "/v1/bulk-actions/{}", "webhooks": "/v1/webhooks/{}"}

# Rows that are not the account's state: who called, and the replay cache of POSTs.
_NOT_STATE = {"audit_log", "idempotency_keys"}
_VOLATILE = {("credentials", "last_used_at")}


def account_state(backend: Backend, account_id: str) -> dict[str, list[tuple]]:
    """Every stored row of one account, straight from the database."""
    state: dict[str, list[tuple]] = {}
    with backend.database.transaction(read_only=True) as session:
        for table in Base.metadata.sorted_tables:
            if table.name in _NOT_STATE:
                continue
            if "account_id" in table.c:
                where = table.c.account_id == account_id
            elif table.name == "accounts":
                where = table.c.id == account_id
            else:
                continue
            columns = [c for c in table.c if (table.name, c.name) not in _VOLATILE]
            rows = session.execute(select(*columns).where(where)
                                   .order_by(*table.primary_key.columns)).all()
            state[table.name] = [tuple(row) for row in rows]
    return state
