"""A server stopped in the middle of a bulk action (kill -9, or a clean shutdown), then started
again: the job completes, each Thing processed exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bulkkit import finished, items, job_of, submit
from livekit import (
    ServerProcess,
    make_tenant,
    private_backend,
    root_conftest,
    ship,
    start_server,
    wait_for,
)
from sqlalchemy import func, select, update

from simplane.bulk import items as job_items
from simplane.bulk.worker import BulkWorker
from simplane.models import BulkAction, Event, Thing, ThingStateChange

SIZE = 6_000
BATCH = 500  # SIMPLANE_BULK_BATCH_SIZE here: what one transaction commits


@pytest.fixture
def crash_backend(pytestconfig: pytest.Config, backend: Any, tmp_path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    # Only the server under test may work on this database: any other worker would claim the job.
    yield from private_backend(pytestconfig, backend.name, tmp_path)


def _part_way(client: httpx.Client, job_id: str) -> dict[str, Any]:
    seen = wait_for(lambda: 0 < (job := job_of(client, job_id))["processed"] < SIZE and job,
                    timeout=60, interval=0.01, what="the job to be part-way")
    assert seen["status"] == "RUNNING"
    return seen


def _stored(backend: Any, job_id: str) -> tuple[BulkAction, dict[str, int]]:
    with backend.database.transaction(read_only=True) as session:
        job = session.get(BulkAction, job_id)
        assert job is not None
        outcomes = job_items.counts(session, job)
    return job, outcomes


def _completes_exactly_once(client: httpx.Client, tenant: Any, job_id: str,
                            ids: list[str]) -> None:
    done = finished(client, job_id, timeout=60)
    assert {k: done[k] for k in ("status", "total", "processed", "succeeded", "failed")} == {
        "status": "COMPLETED", "total": SIZE, "processed": SIZE, "succeeded": SIZE, "failed": 0}
    assert len(items(client, job_id, "SUCCEEDED")) == SIZE
    with tenant.backend.database.transaction(read_only=True) as session:
        states = dict(session.execute(select(Thing.state, func.count()).where(
            Thing.account_id == tenant.account_id).group_by(Thing.state)).all())
        history = Counter(session.scalars(select(ThingStateChange.thing_id).where(
            ThingStateChange.account_id == tenant.account_id,
            ThingStateChange.to_state == "ACTIVE")))
        changed = Counter(session.scalars(select(Event.thing_id).where(
            Event.account_id == tenant.account_id, Event.type == "thing.state_changed")))
        finished_events = session.scalar(select(func.count()).where(
            Event.account_id == tenant.account_id, Event.type == "bulk_action.finished"))
    assert states == {"ACTIVE": SIZE}
    assert set(history) == set(ids) and set(history.values()) == {1}
    assert set(changed) == set(ids) and set(changed.values()) == {1}
    assert finished_events == 1


def test_kill_9_mid_job_then_restart_completes_each_thing_exactly_once(
        pytestconfig: pytest.Config, crash_backend: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    free_port = root_conftest(pytestconfig).free_port
    log = tmp_path / "server.log"
    first = ServerProcess(crash_backend, free_port(), log, SIMPLANE_BULK_STALE_SECONDS="2",
                          SIMPLANE_BULK_BATCH_SIZE=str(BATCH))
    first.start()
    try:
        tenant = make_tenant(pytestconfig, crash_backend, first.base_url)
        ids = ship(tenant, SIZE)
        job = submit(tenant.admin, {"action": "ACTIVATE", "target": {"thing_ids": ids}})
        _part_way(tenant.admin, job["id"])
    finally:
        first.kill()

    cut, outcomes = _stored(crash_backend, job["id"])
    assert cut.status == "RUNNING" and 0 < cut.processed < SIZE
    # Only whole batches were committed; the one in flight was rolled back with the process.
    assert cut.processed % BATCH == 0
    assert outcomes == {"SUCCEEDED": cut.processed, "PENDING": SIZE - cut.processed}

    second = ServerProcess(crash_backend, free_port(), log, SIMPLANE_BULK_STALE_SECONDS="2",
                          SIMPLANE_BULK_BATCH_SIZE=str(BATCH))
    second.start()
    # The tenant's token is signed with the secret key both processes share.
    client = httpx.Client(base_url=second.base_url, timeout=30,
                          headers={"Authorization": tenant.admin.headers["Authorization"]})
    try:
        _completes_exactly_once(client, tenant, job["id"], ids)
    finally:
        client.close()
        second.kill()
        tenant.close()
    resumed, _ = _stored(crash_backend, job["id"])
    assert resumed.owner != cut.owner  # re-claimed once its heartbeat was 2 s old


def test_clean_shutdown_mid_job_hands_the_job_back_at_once(
        pytestconfig: pytest.Config, crash_backend: Any) -> None:
    # The default 60 s staleness: the restarted server must not have to wait for it.
    first = start_server(pytestconfig, crash_backend, bulk_batch_size=BATCH)
    worker: BulkWorker = first.server.config.app.state.bulk_worker
    port = int(first.base_url.rsplit(":", 1)[1])
    tenant = make_tenant(pytestconfig, crash_backend, first.base_url)
    try:
        ids = ship(tenant, SIZE)
        job = submit(tenant.admin, {"action": "ACTIVATE", "target": {"thing_ids": ids}})
        _part_way(tenant.admin, job["id"])
        # The job's row held, no batch of it can commit until the worker has been told to
        # stop: on a fast host the rest of the job was otherwise done within the shutdown's
        # first tenth of a second, before it reached the worker.
        with crash_backend.database.engine.connect() as holder:
            holder.execute(update(BulkAction).where(BulkAction.id == job["id"])
                           .values(processed=BulkAction.processed))
            assert _stored(crash_backend, job["id"])[0].owner == worker.owner
            stopping = threading.Thread(target=first.__exit__, args=(None, None, None))
            stopping.start()
            wait_for(lambda: worker.stopping, what="the bulk worker to be told to stop")
            holder.rollback()
        stopping.join(60)
        assert not stopping.is_alive()

        stopped, outcomes = _stored(crash_backend, job["id"])
        assert (stopped.status, stopped.owner) == ("QUEUED", None)
        assert 0 < stopped.processed < SIZE and stopped.processed % BATCH == 0
        assert outcomes == {"SUCCEEDED": stopped.processed, "PENDING": SIZE - stopped.processed}

        second = start_server(pytestconfig, crash_backend, port, bulk_batch_size=BATCH)
        try:
            _completes_exactly_once(tenant.admin, tenant, job["id"], ids)
        finally:
            second.__exit__(None, None, None)
    finally:
        tenant.close()
