"""AsyncClient on the app in-process through httpx.ASGITransport."""

from __future__ import annotations

import asyncio

import pytest

from simplane.client import (
    AsyncPager,
    InvalidStateTransitionError,
    NotFoundError,
    Thing,
)


def test_reads_writes_and_composite_calls(tenant, aconnect):
    shipped = tenant.things(5)

    async def scenario() -> None:
        async with aconnect(tenant) as client:
            me = await client.me()
            assert me.user.role == "admin"
            pager = client.things.list(limit=2)
            assert isinstance(pager, AsyncPager)
            assert [t.id async for t in pager] == [t["id"] for t in shipped]
            assert len((await pager.first_page()).items) == 2
            found = await client.things.lookup(iccid=shipped[0]["iccid"])
            assert isinstance(found, Thing) and found.id == shipped[0]["id"]
            active = await client.things.activate(found.id, if_match=found.etag)
            assert active.state == "ACTIVE" and active.etag != found.etag
            tagged = await client.things.add_tags(found.id, ["x", "y"])
            assert sorted(tagged.tags) == ["x", "y"]
            await client.things.retire(found.id)
            with pytest.raises(InvalidStateTransitionError):
                await client.things.activate(found.id)
            with pytest.raises(NotFoundError):
                await client.things.lookup(iccid="8931000000000000001")
            report = await client.billing.report(thing_id=found.id)
            assert report.status == "OPEN" and [x.thing_id for x in report.lines.items] == [found.id]

    asyncio.run(scenario())


def test_concurrent_calls_share_one_token(tenant, aconnect):
    shipped = tenant.things(4)

    async def scenario() -> list[str]:
        async with aconnect(tenant) as client:
            things = await asyncio.gather(*(client.things.get(t["id"]) for t in shipped))
            assert client._engine.token is not None
            return [t.id for t in things]

    assert asyncio.run(scenario()) == [t["id"] for t in shipped]


def test_follow_events(tenant, aconnect):
    thing = tenant.things(1)[0]

    async def scenario() -> list[str]:
        async with aconnect(tenant) as client:
            await client.things.activate(thing["id"])
            stream = client.events.follow(thing_id=thing["id"], poll_interval=0.05)
            first = await anext(stream)
            await client.things.suspend(thing["id"])
            second = await anext(stream)
            await stream.aclose()
            return [first.data.get("to"), second.data.get("to")]

    assert asyncio.run(scenario()) == ["ACTIVE", "SUSPENDED"]


def test_429_retried(tenant, aconnect, limited_app):
    thing_id = tenant.things(1)[0]["id"]
    assert tenant.admin.patch(f"/v1/things/{thing_id}", json={"state": "ACTIVE"}).status_code == 200
    retries = []

    async def scenario() -> None:
        async with aconnect(tenant, app=limited_app, on_retry=retries.append) as client:
            assert (await client.groups.list().first_page()).items  # empties the bucket
            # The POST carries its generated key, so it may be repeated after the 429.
            sent = await client.sms.send(thing_id, "ping")
            assert sent.status == "QUEUED"

    asyncio.run(scenario())
    assert [(r.method, r.status) for r in retries] == [("POST", 429)]
    sent = tenant.admin.get("/v1/sms", params={"thing_id": thing_id}).json()["items"]
    assert [m["text"] for m in sent] == ["ping"]  # once: the 429 did no work
