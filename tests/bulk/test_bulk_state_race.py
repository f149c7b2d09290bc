"""A Thing changed by someone else between a set-based batch's read and its write (PostgreSQL,
where the batch holds no lock on the Things it reads) is left PENDING and done again by the next
batch from its new state; nothing is changed twice. The worker side, driven directly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from livekit import private_backend
from sqlalchemy import select

from simplane.accounts.service import create_account
from simplane.bulk import items, service, state
from simplane.bulk.schemas import BulkActionCreate
from simplane.core.auth import Principal, Role
from simplane.models import BulkAction, BulkActionItem, Event, Thing, ThingStateChange
from simplane.things.identifiers import random_iccid, random_imsi
from simplane.things.service import OPERATOR, SimRow, change_state, ship_sims


@pytest.fixture
def quiet_backend(pytestconfig: pytest.Config, backend: Any, tmp_path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    # No server: only this test's calls work on the job.
    if backend.name != "postgresql":
        pytest.skip("SQLite holds the one write lock from the batch's read to its write")
    yield from private_backend(pytestconfig, backend.name, tmp_path)


def test_a_thing_changed_under_a_batch_is_done_again_from_its_new_state(
        quiet_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    database = quiet_backend.database
    with database.transaction() as session:
        made = create_account(session, quiet_backend.settings, name="race",
                              admin_email="race@example.com")
        account_id, user_id = made.account.id, made.admin.id
        ship_sims(session, account_id, [SimRow(n, random_iccid(), random_imsi())
                                        for n in range(3)])
        ids = sorted(session.scalars(select(Thing.id).where(Thing.account_id == account_id)))
        principal = Principal(account_id, user_id, Role.ADMIN, made.client_id)
        job_id = service.create_job(session, principal, BulkActionCreate.model_validate(
            {"action": "ACTIVATE", "target": {"thing_ids": ids}})).id
        assert service.claim_job(session, "test") == job_id
    raced = ids[1]

    planned = state._plan

    def plan_then_race(rows, to_state):  # type: ignore[no-untyped-def]
        plan = planned(rows, to_state)
        monkeypatch.setattr(state, "_plan", planned)  # once
        with database.transaction() as other:  # another request, committed in between
            thing = other.get(Thing, raced)
            change_state(other, thing, "ACTIVE", OPERATOR)
            change_state(other, thing, "SUSPENDED", OPERATOR)
        return plan

    monkeypatch.setattr(state, "_plan", plan_then_race)
    with database.transaction() as session:
        assert service.run_batch(session, job_id, "test") is True
    with database.transaction(read_only=True) as session:
        job = session.get(BulkAction, job_id)
        assert (job.processed, job.succeeded, job.failed) == (2, 2, 0)
        outcomes = dict(session.execute(select(BulkActionItem.thing_id, items.status_of(job))
                                        .where(BulkActionItem.bulk_action_id == job_id)).all())
        assert outcomes == {ids[0]: "SUCCEEDED", raced: "PENDING", ids[2]: "SUCCEEDED"}

    with database.transaction() as session:
        assert service.run_batch(session, job_id, "test") is True
        assert service.run_batch(session, job_id, "test") is False
    with database.transaction(read_only=True) as session:
        job = session.get(BulkAction, job_id)
        assert (job.status, job.processed, job.succeeded, job.failed) == ("COMPLETED", 3, 3, 0)
        history = session.execute(
            select(ThingStateChange.from_state, ThingStateChange.to_state, ThingStateChange.source)
            .where(ThingStateChange.thing_id == raced)
            .order_by(ThingStateChange.changed_at, ThingStateChange.id)).all()
        assert [tuple(h) for h in history] == [
            (None, "PROVISIONED", "operator"), ("PROVISIONED", "ACTIVE", "operator"),
            ("ACTIVE", "SUSPENDED", "operator"), ("SUSPENDED", "ACTIVE", "bulk")]
        changed = session.scalars(select(Event.data).where(
            Event.thing_id == raced, Event.type == "thing.state_changed")).all()
        assert [(e["from"], e["to"]) for e in changed] == [
            ("PROVISIONED", "ACTIVE"), ("ACTIVE", "SUSPENDED"), ("SUSPENDED", "ACTIVE")]
        states = set(session.scalars(select(Thing.state).where(Thing.account_id == account_id)))
        assert states == {"ACTIVE"}
