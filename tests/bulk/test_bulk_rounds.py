"""A state action's batches side by side: a round of slices, each its own transaction, whose
changes run at once and whose records land in item order (`bulk.service.plan_slices`,
`run_slice`, and the worker's rounds on PostgreSQL). The worker side, driven directly."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from livekit import private_backend
from sqlalchemy import func, select

from simplane.accounts.service import create_account
from simplane.bulk import items, service, state
from simplane.bulk.schemas import BulkActionCreate
from simplane.bulk.worker import BulkWorker
from simplane.core.auth import Principal, Role
from simplane.models import BulkAction, BulkActionItem, Thing, ThingStateChange
from simplane.things.identifiers import random_iccid, random_imsi
from simplane.things.service import SimRow, ship_sims

OWNER = "test"


@pytest.fixture
def quiet_backend(pytestconfig: pytest.Config, backend: Any, tmp_path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    # No server: only this test's calls work on the job.
    yield from private_backend(pytestconfig, backend.name, tmp_path)


def _job(backend: Any, count: int, *, claim: bool = True) -> tuple[str, list[str]]:
    """An ACTIVATE of `count` new Things; claimed by OWNER unless told otherwise."""
    with backend.database.transaction() as session:
        made = create_account(session, backend.settings, name="rounds",
                              admin_email="rounds@example.com")
        account_id = made.account.id
        ship_sims(session, account_id, [SimRow(n, random_iccid(), random_imsi())
                                        for n in range(count)])
        ids = sorted(session.scalars(select(Thing.id).where(Thing.account_id == account_id)))
        principal = Principal(account_id, made.admin.id, Role.ADMIN, made.client_id)
        job_id = service.create_job(session, principal, BulkActionCreate.model_validate(
            {"action": "ACTIVATE", "target": {"thing_ids": ids}})).id
        if claim:
            assert service.claim_job(session, OWNER) == job_id
    return job_id, ids


def _plan(backend: Any, job_id: str, size: int, count: int) -> list[service.Slice] | None:
    with backend.database.transaction() as session:
        return service.plan_slices(session, job_id, OWNER, size, count)


def _run(backend: Any, job_id: str, piece: service.Slice, owner: str = OWNER) -> None:
    with backend.database.transaction() as session:
        service.run_slice(session, job_id, owner, piece, lambda: None)


def _outcomes(backend: Any, job_id: str) -> tuple[BulkAction, dict[str, str], int]:
    """The job, each item's status as read, and how many items carry a status of their own."""
    with backend.database.transaction(read_only=True) as session:
        job = session.get(BulkAction, job_id)
        assert job is not None
        session.expunge(job)
        statuses = dict(session.execute(select(BulkActionItem.thing_id, items.status_of(job))
                                        .where(BulkActionItem.bulk_action_id == job_id)).all())
        written = session.scalar(select(func.count()).where(
            BulkActionItem.bulk_action_id == job_id, BulkActionItem.status.is_not(None)))
    return job, statuses, written or 0


def _changes(backend: Any, ids: list[str]) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each Thing's state and the changes bulk actions made to it."""
    with backend.database.transaction(read_only=True) as session:
        states = dict(session.execute(select(Thing.id, Thing.state).where(Thing.id.in_(ids))).all())
        history: dict[str, list[tuple[str, str]]] = {thing_id: [] for thing_id in ids}
        for thing_id, from_state, to_state in session.execute(
                select(ThingStateChange.thing_id, ThingStateChange.from_state,
                       ThingStateChange.to_state)
                .where(ThingStateChange.thing_id.in_(ids), ThingStateChange.source == "bulk")):
            history[thing_id].append((from_state, to_state))
    return {thing_id: (states[thing_id], history[thing_id]) for thing_id in ids}


ACTIVATED = ("ACTIVE", [("PROVISIONED", "ACTIVE")])
UNTOUCHED = ("PROVISIONED", [])


def test_a_round_is_cut_into_even_slices_in_item_order(quiet_backend: Any) -> None:
    job_id, ids = _job(quiet_backend, 7)
    slices = _plan(quiet_backend, job_id, 3, 3)
    assert slices is not None
    assert [piece.thing_ids for piece in slices] == [ids[:3], ids[3:5], ids[5:]]
    assert [piece.after for piece in slices] == [None, ids[2], ids[4]]
    # Fewer pending than a round holds: as many slices as `size` needs, no empty one.
    assert [len(p.thing_ids) for p in _plan(quiet_backend, job_id, 4, 5) or []] == [4, 3]
    assert [len(p.thing_ids) for p in _plan(quiet_backend, job_id, 10, 2) or []] == [7]


def test_slices_recorded_in_order_move_done_through_and_complete_the_job(
        quiet_backend: Any) -> None:
    job_id, ids = _job(quiet_backend, 7)
    slices = _plan(quiet_backend, job_id, 3, 3)
    assert slices is not None
    for piece in slices:
        _run(quiet_backend, job_id, piece)
    job, statuses, written = _outcomes(quiet_backend, job_id)
    assert (job.status, job.done_through) == ("RUNNING", ids[-1])
    assert (job.processed, job.succeeded, job.failed) == (7, 7, 0)
    assert statuses == dict.fromkeys(ids, "SUCCEEDED")
    assert written == 0  # the watermark said it: no item row was written
    assert _changes(quiet_backend, ids) == dict.fromkeys(ids, ACTIVATED)

    assert _plan(quiet_backend, job_id, 3, 3) is None
    job, _, _ = _outcomes(quiet_backend, job_id)
    assert job.status == "COMPLETED"


def test_a_slice_whose_predecessor_failed_records_its_own_successes(quiet_backend: Any) -> None:
    job_id, ids = _job(quiet_backend, 6)
    first, second = _plan(quiet_backend, job_id, 3, 2) or []

    # The second slice records before the first has committed (the first then fails).
    _run(quiet_backend, job_id, second)

    def fail() -> None:
        raise RuntimeError("the first slice's transaction failed")

    with pytest.raises(RuntimeError), quiet_backend.database.transaction() as session:
        service.run_slice(session, job_id, OWNER, first, fail)

    job, statuses, written = _outcomes(quiet_backend, job_id)
    assert job.done_through is None
    assert (job.processed, job.succeeded) == (3, 3)
    assert statuses == {**dict.fromkeys(ids[:3], "PENDING"), **dict.fromkeys(ids[3:], "SUCCEEDED")}
    assert written == 3
    assert _changes(quiet_backend, ids) == {**dict.fromkeys(ids[:3], UNTOUCHED),
                                            **dict.fromkeys(ids[3:], ACTIVATED)}
    with quiet_backend.database.transaction(read_only=True) as session:
        job = session.get(BulkAction, job_id)
        assert job is not None
        assert items.counts(session, job) == {"PENDING": 3, "SUCCEEDED": 3}

    # The next round takes only what the failed slice left.
    again = _plan(quiet_backend, job_id, 3, 2)
    assert again is not None
    assert [(piece.thing_ids, piece.after) for piece in again] == [(ids[:3], None)]
    _run(quiet_backend, job_id, again[0])
    assert _plan(quiet_backend, job_id, 3, 2) is None
    job, statuses, _ = _outcomes(quiet_backend, job_id)
    assert (job.status, job.processed, job.succeeded, job.failed) == ("COMPLETED", 6, 6, 0)
    assert statuses == dict.fromkeys(ids, "SUCCEEDED")
    assert _changes(quiet_backend, ids) == dict.fromkeys(ids, ACTIVATED)


@pytest.mark.parametrize("when", ["before its changes", "while it waits its turn"])
def test_a_slice_of_a_job_taken_over_changes_nothing(quiet_backend: Any, when: str) -> None:
    if when != "before its changes" and quiet_backend.name != "postgresql":
        pytest.skip("SQLite: the slice's changes hold the one write lock a claim needs")
    job_id, ids = _job(quiet_backend, 4)
    first, second = _plan(quiet_backend, job_id, 2, 2) or []
    _run(quiet_backend, job_id, first)

    def take_over() -> None:
        time.sleep(0.01)
        with quiet_backend.database.transaction() as session:  # our heartbeat is stale at once
            assert service.claim_job(session, "other", stale_after=timedelta(0)) == job_id

    if when == "before its changes":
        take_over()
    turn = take_over if when == "while it waits its turn" else (lambda: None)
    with pytest.raises(service.JobLost), quiet_backend.database.transaction() as session:
        service.run_slice(session, job_id, OWNER, second, turn)
    job, statuses, _ = _outcomes(quiet_backend, job_id)
    assert (job.owner, job.done_through, job.processed) == ("other", ids[1], 2)
    assert statuses == {**dict.fromkeys(ids[:2], "SUCCEEDED"), **dict.fromkeys(ids[2:], "PENDING")}
    assert _changes(quiet_backend, ids) == {**dict.fromkeys(ids[:2], ACTIVATED),
                                            **dict.fromkeys(ids[2:], UNTOUCHED)}
    assert _plan(quiet_backend, job_id, 2, 2) is None  # not ours any more


def test_a_cancel_finishes_the_job_at_the_next_round(quiet_backend: Any) -> None:
    job_id, ids = _job(quiet_backend, 4)
    first, _ = _plan(quiet_backend, job_id, 2, 2) or []
    _run(quiet_backend, job_id, first)
    with quiet_backend.database.transaction() as session:
        job = session.get(BulkAction, job_id)
        assert job is not None
        service.cancel(session, job)
    assert _plan(quiet_backend, job_id, 2, 2) is None
    job, statuses, _ = _outcomes(quiet_backend, job_id)
    assert (job.status, job.processed) == ("CANCELLED", 2)
    assert list(statuses.values()).count("PENDING") == 2


def test_the_worker_runs_a_rounds_slices_at_once_and_records_them_in_order(
        quiet_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if quiet_backend.name != "postgresql":
        pytest.skip("SQLite has one writer: its worker runs one batch at a time")
    job_id, ids = _job(quiet_backend, 300, claim=False)
    # The first round's three slices each wait at the barrier after their changes: the round
    # gets past it only if all three run at once (else BrokenBarrierError fails the job).
    barrier = threading.Barrier(3, timeout=20)
    changed = state.change_state_batch
    calls = itertools.count()
    threads: set[str] = set()

    def change_then_meet(*args: Any, **kwargs: Any) -> Any:
        outcomes = changed(*args, **kwargs)
        threads.add(threading.current_thread().name)
        if next(calls) < 3:
            barrier.wait()
        return outcomes

    monkeypatch.setattr(service, "change_state_batch", change_then_meet)
    worker = BulkWorker(quiet_backend.database, interval=0.02, state_batch=40, parallel_batches=3)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job, statuses, written = _outcomes(quiet_backend, job_id)
            if job.status != "QUEUED" and job.status != "RUNNING":
                break
            time.sleep(0.05)
    finally:
        worker.stop()
    assert not barrier.broken
    assert len(threads) == 3 and all(name.startswith("bulk-slice") for name in threads)
    assert (job.status, job.processed, job.succeeded, job.done_through) == (
        "COMPLETED", 300, 300, ids[-1])
    assert statuses == dict.fromkeys(ids, "SUCCEEDED")
    assert written == 0  # every slice followed its predecessor's commit
    assert _changes(quiet_backend, ids) == dict.fromkeys(ids, ACTIVATED)


def test_sqlite_runs_one_batch_at_a_time(quiet_backend: Any) -> None:
    worker = BulkWorker(quiet_backend.database, parallel_batches=4)
    expected = 4 if quiet_backend.name == "postgresql" else 1
    assert worker.parallel_batches == expected
    assert (worker._slices is not None) == (expected > 1)
