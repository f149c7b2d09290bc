"""The blocking Client against the live server: every namespace, reading what the API answers."""

from __future__ import annotations

import base64
import secrets
from datetime import date
from decimal import Decimal

import pytest

from simplane.client import (
    Account,
    BulkAction,
    Client,
    Page,
    PreconditionFailedError,
    Thing,
    ThingsGroup,
)


def test_initial_information(tenant, connect):
    client = connect(tenant)
    me = client.me()
    assert me.role == "admin" and me.client_id == tenant.client_id
    account = client.account.get()
    assert isinstance(account, Account) and account.id == tenant.account_id
    assert account.etag and account.ip_quota.total > 0 and account.coverage.countries
    assert [apn.name for apn in client.account.apns()] == [account.apn]
    groups = client.groups.list().to_list()
    assert [g.is_default for g in groups] == [True]
    networks = client.networks.list().to_list()
    assert len(networks) == 1 and networks[0].is_default and networks[0].ip_pools
    profiles = client.ip_profiles.list().to_list()
    assert [p.is_default for p in profiles] == [True]
    assert profiles[0].inbound.default_action == "ALLOW"
    tariff = client.billing.tariff()
    assert isinstance(tariff.monthly_fee, Decimal)


def test_things_lifecycle_lookup_and_tags(tenant, connect):
    client = connect(tenant)
    shipped = tenant.things(2)
    thing = client.things.get(shipped[0]["id"])
    assert isinstance(thing, Thing) and thing.state == "PROVISIONED" and thing.etag
    assert thing.connection.status == "NEVER"
    assert client.things.lookup(iccid=thing.iccid).id == thing.id
    assert client.things.lookup(imsi=thing.imsi).id == thing.id

    assert client.things.activate(thing.id, if_match=thing.etag).state == "ACTIVE"
    assert client.things.suspend(thing.id).state == "SUSPENDED"
    assert client.things.update(thing.id, name="meter 1").name == "meter 1"
    assert sorted(client.things.add_tags(thing.id, ["fleet", "nl"]).tags) == ["fleet", "nl"]
    assert sorted(client.things.add_tags(thing.id, ["nl", "b"]).tags) == ["b", "fleet", "nl"]
    assert sorted(client.things.remove_tags(thing.id, ["fleet"]).tags) == ["b", "nl"]
    assert [t.id for t in client.things.list(tag=["nl", "b"])] == [thing.id]
    assert client.things.retire(thing.id).state == "RETIRED"
    history = [(c.from_state, c.to_state) for c in client.things.state_history(thing.id)]
    assert history[-3:] == [("PROVISIONED", "ACTIVE"), ("ACTIVE", "SUSPENDED"),
                            ("SUSPENDED", "RETIRED")]


def test_iterators_follow_next_cursor(tenant, connect):
    client = connect(tenant)
    ids = [t["id"] for t in tenant.things(7)]
    pager = client.things.list(limit=3)
    pages = list(pager.pages())
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert isinstance(pages[0], Page) and pages[0].next_cursor and pages[-1].next_cursor is None
    assert [t.id for t in pager] == ids  # creation order, nothing repeated or skipped
    first = pager.first_page()
    assert [t.id for t in client.things.list(limit=3, cursor=first.next_cursor)] == ids[3:]
    assert [t.id for t in client.things.list(state="ACTIVE")] == []


def test_groups(tenant, connect):
    client = connect(tenant)
    group = client.groups.create("sensors", description="field sensors")
    assert isinstance(group, ThingsGroup) and group.thing_count == 0 and not group.is_default
    default = next(g for g in client.groups.list() if g.is_default)
    assert (group.network_id, group.ip_profile_id) == (default.network_id, default.ip_profile_id)
    renamed = client.groups.update(group.id, name="meters", if_match=group.etag)
    assert renamed.name == "meters" and client.groups.get(group.id).name == "meters"
    client.groups.delete(group.id)
    assert group.id not in {g.id for g in client.groups.list()}


def test_networks_pools_routes_nat_and_vpn(tenant, connect):
    client = connect(tenant)
    network = client.networks.create("plant", dns_servers=["192.0.2.53"])
    pool = client.networks.pools.create(network.id, prefix_length=28)
    assert pool.usable == 13 and client.networks.get(network.id).ip_pools[0].id == pool.id
    group = client.groups.create("plant", network_id=network.id)
    thing = client.things.move(tenant.things(1)[0]["id"], group.id)
    locked = client.things.lock_ip(thing.id)
    assert locked.ip_locked and locked.ip_address

    rule = client.networks.nat_rules.create(network.id, thing_id=thing.id, public_port=10022,
                                            private_port=22, description="ssh")
    assert rule.public_ip == client.networks.get(network.id).nat_public_ip
    assert [r.id for r in client.networks.nat_rules.list(network.id)] == [rule.id]
    assert client.networks.nat_rules.update(network.id, rule.id, private_port=2222).private_port == 2222

    tunnel = client.networks.vpn_tunnels.create(
        network.id, name="hq", remote_gateway="8.8.4.4", remote_subnets=["172.16.0.0/24"],
        psk="correct horse battery staple")
    assert tunnel.local_subnets == [pool.cidr] and tunnel.status in ("DOWN", "CONNECTING", "UP")
    routes = client.networks.routes.list(network.id).to_list()
    assert [(r.destination, r.target, r.vpn_tunnel_id) for r in routes] == [
        ("172.16.0.0/24", "VPN_TUNNEL", tunnel.id)]
    config = client.networks.peer_config(network.id, tunnel.id)
    psk = base64.b64encode(b"correct horse battery staple").decode()
    assert "8.8.4.4" in config and f"secret = 0s{psk}" in config

    trace = client.networks.trace(network.id, direction="OUTBOUND", protocol="TCP",
                                  source_ip=locked.ip_address, source_port=40000,
                                  destination_ip="172.16.0.9", destination_port=443)
    assert trace.verdict == "ALLOW" and trace.steps
    client.networks.nat_rules.delete(network.id, rule.id)
    assert client.networks.nat_rules.list(network.id).to_list() == []


def test_ip_profile_rules_and_evaluate(tenant, connect):
    client = connect(tenant)
    profile = client.ip_profiles.create("locked-down", outbound_default="DENY")
    allow = client.ip_profiles.rules.create(profile.id, chain="OUTBOUND", action="ALLOW",
                                            protocol="TCP", remote_cidr="198.51.100.0/24",
                                            ports="443", description="back end")
    deny = client.ip_profiles.rules.create(profile.id, chain="INBOUND", action="DENY",
                                           protocol="TCP", ports="23", position=1)
    assert [r.id for r in client.ip_profiles.rules.list(profile.id, chain="OUTBOUND")] == [allow.id]
    assert client.ip_profiles.get(profile.id).inbound.rules[0].id == deny.id
    hit = client.ip_profiles.evaluate(profile.id, direction="OUTBOUND", protocol="TCP",
                                      remote_ip="198.51.100.7", port=443)
    assert (hit.action, hit.rule_id) == ("ALLOW", allow.id)
    miss = client.ip_profiles.evaluate(profile.id, direction="OUTBOUND", protocol="UDP",
                                       remote_ip="198.51.100.7", port=53)
    assert (miss.action, miss.rule_id) == ("DENY", None)
    client.ip_profiles.rules.delete(profile.id, deny.id)
    assert client.ip_profiles.get(profile.id).inbound.rules == []


def test_sms(tenant, connect):
    client = connect(tenant)
    thing = client.things.activate(tenant.things(1)[0]["id"])
    sms = client.sms.send(thing.id, "reboot now")
    assert (sms.direction, sms.status, sms.encoding, sms.segments) == ("MT", "QUEUED", "GSM7", 1)
    assert client.sms.get(sms.id).text == "reboot now"
    assert [m.id for m in client.sms.list(thing_id=thing.id)] == [sms.id]
    assert [m.id for m in client.things.sms(thing.id)] == [sms.id]


def test_billing(new_tenant, connect):
    tenant = new_tenant(currency="EUR", monthly_fee=Decimal("1.50"),
                        price_per_mb=Decimal("0.01"), price_per_sms_mt=Decimal("0.05"),
                        price_per_sms_mo=Decimal("0.02"))
    client = connect(tenant)
    things = tenant.things(3)
    for thing in things[:2]:
        client.things.activate(thing["id"])
    report = client.billing.report()
    assert report.status == "OPEN" and report.period == client.billing.current_period()
    assert report.totals.things_charged == 2 and report.totals.monthly_fees == Decimal("3.00")
    lines = client.billing.lines(report.period, limit=1).to_list()
    # A line per Thing charged or with usage: the PROVISIONED one has none.
    assert sorted(line.thing_id for line in lines) == sorted(t["id"] for t in things[:2])
    csv_text = client.billing.report_csv(report.period)
    assert csv_text.splitlines()[0].startswith("thing_id") and len(csv_text.splitlines()) == 3
    one = client.billing.report(report.period, thing_id=things[0]["id"])
    assert [line.thing_id for line in one.lines.items] == [things[0]["id"]]


def test_bulk_action_wait_reports_progress(tenant, connect, bulk_worker):
    client = connect(tenant)
    things = tenant.things(4)
    for thing in things:
        client.things.add_tags(thing["id"], ["batch"])
    client.things.retire(things[0]["id"])
    dry = client.bulk_actions.create("ACTIVATE", tags_all=["batch"], dry_run=True)
    assert dry.total == 4
    job = client.bulk_actions.create("ACTIVATE", tags_all=["batch"])
    seen: list[BulkAction] = []
    done = client.bulk_actions.wait(job.id, poll_interval=0.05, timeout=30, progress=seen.append)
    assert (done.status, done.total, done.succeeded, done.failed) == ("COMPLETED", 4, 3, 1)
    assert seen[-1] == done and all(isinstance(j, BulkAction) for j in seen)
    failed = client.bulk_actions.items(job.id, status="FAILED").to_list()
    assert [(i.thing_id, i.code) for i in failed] == [(things[0]["id"], "invalid_state_transition")]
    assert job.id in {j.id for j in client.bulk_actions.list()}


def test_events_list_and_follow(tenant, connect):
    client = connect(tenant)
    thing = tenant.things(1)[0]
    client.things.activate(thing["id"])
    client.things.suspend(thing["id"])
    events = client.events.list(type="thing.state_changed", thing_id=thing["id"]).to_list()
    assert [e.data.get("to") or e.data.get("to_state") for e in events] == ["ACTIVE", "SUSPENDED"]
    follow = client.events.follow(thing_id=thing["id"], poll_interval=0.05)
    assert [next(follow).id, next(follow).id] == [e.id for e in events]
    client.things.activate(thing["id"])  # an event after following started
    newest = next(follow)
    assert newest.type == "thing.state_changed" and newest.id not in {e.id for e in events}


def test_a_viewer_reads(tenant, connect):
    client: Client = connect(tenant, "viewer")
    assert client.me().role == "viewer"
    assert client.things.list().first_page().items == []


def test_thing_history_usage_and_disconnect(tenant, connect):
    client = connect(tenant)
    thing = client.things.activate(tenant.things(1)[0]["id"])
    assert client.things.sessions(thing.id).to_list() == []
    assert client.things.imei_history(thing.id).to_list() == []
    usage = client.things.usage(thing.id, from_=date(2025, 1, 1), to=date(2025, 1, 31))
    assert (usage.from_, usage.to, usage.thing_id) == (date(2025, 1, 1), date(2025, 1, 31),
                                                       thing.id)
    with pytest.raises(PreconditionFailedError) as caught:
        client.things.disconnect(thing.id)  # no session to end
    assert caught.value.code == "not_attached"


def test_users_credentials_webhooks_and_deletes(tenant, connect):
    client = connect(tenant)
    user = client.users.create(f"ops-{secrets.token_hex(4)}@example.com", "viewer", name="Ops")
    made = client.users.create_credential(user.id, name="laptop")
    assert made.client_secret and [c.client_id for c in client.users.credentials(user.id)] == [
        made.client_id]
    with Client(client.base_url, made.client_id, made.client_secret) as theirs:
        assert theirs.me().role == "viewer"
    assert client.users.update(user.id, role="manager").role == "manager"
    client.users.delete_credential(user.id, made.client_id)
    client.users.delete(user.id)
    assert user.id not in {u.id for u in client.users.list()}
    assert any(e.path == "/v1/users" for e in client.users.audit_log())

    hook = client.webhooks.create("https://backend.example.com/hook")
    assert client.webhooks.update(hook.id, enabled=False).enabled is False
    client.webhooks.delete(hook.id)
    network = client.networks.create("temporary")
    client.networks.delete(network.id)
    assert [n.id for n in client.networks.list()] != [] and network.id not in {
        n.id for n in client.networks.list()}
    assert client.account.update(name="Renamed").name == "Renamed"
