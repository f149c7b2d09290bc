"""Hundreds of simultaneous Access-Requests for different Things: every one accepted, no
address handed out twice."""

from __future__ import annotations

import ipaddress

from radius_helpers import access_attributes, default_pool, radclient
from sqlalchemy import select

from simplane.models import IpLease, Thing

COUNT = 250  # the /24 default pool has 253 assignable addresses


def test_simultaneous_attaches_get_distinct_addresses(radius, backend, tenant, active_things):  # type: ignore[no-untyped-def]
    things = active_things(COUNT, via_api=False)
    pool = ipaddress.IPv4Network(default_pool(tenant.admin)["cidr"])

    run = radclient(radius.auth_port, "auth",
                    *(access_attributes(t["imsi"], **{"Message-Authenticator": "0x00"})
                      for t in things),
                    parallel=COUNT, timeout=30, retries=1)

    assert len(run.replies) == COUNT, str(run)[-2000:]
    assert {r.code for r in run.replies} == {"Access-Accept"}, str(run)[-2000:]
    addresses = [r.get("Framed-IP-Address") for r in run.replies]
    assert len(set(addresses)) == COUNT
    assert all(ipaddress.IPv4Address(a) in pool for a in addresses)
    ids = [t["id"] for t in things]
    with backend.database.transaction(read_only=True) as session:
        leased = session.execute(select(IpLease.thing_id, IpLease.address)
                                 .where(IpLease.thing_id.in_(ids))).all()
        shown = {thing_id: address for thing_id, address in session.execute(
            select(Thing.id, Thing.ip_address).where(Thing.id.in_(ids)))}
    assert len(leased) == COUNT and len({address for _, address in leased}) == COUNT
    # Each Thing shows the address its lease holds, and those are the addresses answered.
    assert {t: str(ipaddress.IPv4Address(a)) for t, a in leased} == shown
    assert set(shown.values()) == set(addresses)
