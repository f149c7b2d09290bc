"""Every /v1 route of the app: who may call it and how to build a valid request for it.

`tests/test_route_matrix.py` checks this table against `app.routes`, so a new route fails the
suite until it has a row here. A row's request must succeed for every role it allows: the
matrix sends it, so a 403 or a 404 on a foreign id always means what the test says it means.
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from simplane.accounts.service import create_account
from simplane.core.ids import new_id
from simplane.core.security import new_client_id
from simplane.models import Base


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


@dataclass
class Estate:
    """One tenant's Networks and IP Profiles resources beyond the defaults, one of each kind."""

    network: dict
    pool: dict
    nat_thing: dict  # in a group on `network`, with a locked IP: NAT rules need one
    route: dict
    nat_rule: dict
    tunnel: dict
    profile: dict
    firewall_rule: dict


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
    b_thing: dict
    b_group: dict
    b_user: dict
    b_credential: dict
    estate: Estate | None = None
    b_estate: Estate | None = None
    _n: list[int] = field(default_factory=lambda: [0])

    @property
    def mine(self) -> Estate:
        assert self.estate is not None
        return self.estate

    @property
    def theirs(self) -> Estate:
        assert self.b_estate is not None
        return self.b_estate

    def number(self) -> int:
        self._n[0] += 1
        return self._n[0]

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self.number()}-{secrets.token_hex(3)}"

    def subnet(self) -> str:
        """A /24 no other call got: route destinations and VPN remote subnets must differ."""
        n = self.number()
        return f"100.{64 + n // 256}.{n % 256}.0/24"

    def port(self) -> int:
        """A public port no other NAT rule holds."""
        return 20000 + self.number()

    def fresh_group(self, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post("/v1/things-groups", json={"name": self.unique("g")}))

    def fresh_user(self, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post("/v1/users", json={
            "email": f"{self.unique('u')}@example.com", "name": "matrix", "role": "viewer"}))

    def fresh_credential(self, user_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post(f"/v1/users/{user_id}/credentials", json={}))

    def fresh_network(self, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post("/v1/networks", json={"name": self.unique("net")}))

    def fresh_pool(self, network_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post(f"/v1/networks/{network_id}/ip-pools",
                                         json={"prefix_length": 29}))

    def fresh_route(self, network_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post(f"/v1/networks/{network_id}/routes", json={
            "destination": self.subnet(), "target": "INTERNET"}))

    def nat_rule_body(self, thing_id: str) -> dict:
        return {"protocol": "TCP", "public_port": self.port(), "thing_id": thing_id,
                "private_port": 22}

    def fresh_nat_rule(self, network_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        estate = self.mine if tenant is self.a else self.theirs
        return created(tenant.admin.post(f"/v1/networks/{network_id}/nat-rules",
                                         json=self.nat_rule_body(estate.nat_thing["id"])))

    def tunnel_body(self) -> dict:
        return {"name": self.unique("vpn"), "remote_gateway": "8.8.4.4",
                "remote_subnets": [self.subnet()], "psk": "matrix-pre-shared-key"}

    def fresh_tunnel(self, network_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post(f"/v1/networks/{network_id}/vpn-tunnels",
                                         json=self.tunnel_body()))

    def fresh_profile(self, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post("/v1/ip-profiles", json={"name": self.unique("ipp")}))

    def fresh_firewall_rule(self, profile_id: str, tenant: Tenant | None = None) -> dict:
        tenant = tenant or self.a
        return created(tenant.admin.post(f"/v1/ip-profiles/{profile_id}/rules", json={
            "chain": "INBOUND", "action": "ALLOW", "protocol": "TCP", "ports": "22"}))


def created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def build_world(base_url: str, backend: Backend) -> World:
    a, b = open_tenant(base_url, backend), open_tenant(base_url, backend)
    clients = {role: a.client(role) for role in ROLES}
    thing = a.things(1)[0]
    # An ACTIVE Thing gives A a state change and an event, so every list has something of A's.
    response = a.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
    assert response.status_code == 200, response.text
    world = World(a, b, clients, response.json(), {}, {}, {}, b.things(1)[0], {}, {}, {})
    world.group = world.fresh_group()
    world.user = world.fresh_user()
    world.credential = world.fresh_credential(world.user["id"])
    world.b_group = world.fresh_group(b)
    world.b_user = world.fresh_user(b)
    world.b_credential = world.fresh_credential(world.b_user["id"], b)
    return world


# Path parameters: A's id of that kind (shared, or built fresh for routes that destroy it), B's
# own id of that kind, and an id of the same shape that names nothing.
@dataclass(frozen=True)
class Param:
    shared: Callable[[World], str]
    fresh: Callable[[World, dict[str, str]], str]
    own: Callable[[World], str]
    unknown: Callable[[], str]


PARAMS: dict[str, Param] = {
    "thing_id": Param(lambda w: w.thing["id"], lambda w, _: w.thing["id"],
                      lambda w: w.b_thing["id"], lambda: new_id("thing")),
    "group_id": Param(lambda w: w.group["id"], lambda w, _: w.fresh_group()["id"],
                      lambda w: w.b_group["id"], lambda: new_id("things_group")),
    "user_id": Param(lambda w: w.user["id"], lambda w, _: w.fresh_user()["id"],
                     lambda w: w.b_user["id"], lambda: new_id("user")),
    "client_id": Param(lambda w: w.credential["client_id"],
                       lambda w, ids: w.fresh_credential(ids["user_id"])["client_id"],
                       lambda w: w.b_credential["client_id"], new_client_id),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    roles: frozenset[str] | None  # None: public, no token
    body: Callable[[World], dict[str, Any]] = lambda _: {}  # httpx request keyword arguments
    destroys: bool = False  # each call needs its own fresh resource

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    def ids(self, world: World) -> dict[str, str]:
        """A's ids for the path: fresh ones when the call destroys its target."""
        ids: dict[str, str] = {}
        for name in self.params:
            param = PARAMS[name]
            ids[name] = param.fresh(world, ids) if self.destroys else param.shared(world)
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
    # Things Groups (api.md §5)
    Route("GET", "/v1/things-groups", EVERYONE),
    Route("POST", "/v1/things-groups", WRITERS, lambda w: {"json": {"name": w.unique("g")}}),
    Route("GET", "/v1/things-groups/{group_id}", EVERYONE),
    Route("PATCH", "/v1/things-groups/{group_id}", WRITERS,
          lambda w: {"json": {"description": w.unique("d")}}),
    Route("DELETE", "/v1/things-groups/{group_id}", WRITERS, destroys=True),
    # events (api.md §11)
    Route("GET", "/v1/events", READERS),
]

# Where each id kind can be read back, to compare its ETag before and after a foreign request.
READ_BACK = {"thing_id": "/v1/things/{}", "group_id": "/v1/things-groups/{}",
             "user_id": "/v1/users/{}"}

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
