"""Bulk actions: one request, up to millions of Things, each with the single-Thing rules.

Creating a job resolves its target in one INSERT ... SELECT into `bulk_action_items`. Workers
in the `serve` processes claim jobs through the database and process PENDING items in batches:
the batch's changes and its items' outcomes commit together, so a crash repeats no Thing and
loses none (the next claim resumes the PENDING items).

ACTIVATE, SUSPEND and RETIRE run set-based (`bulk.state`), tens of thousands of Things per
batch, and on PostgreSQL several batches at once (`plan_slices`, `run_slice`). The other
actions apply the single-Thing services per Thing, `BATCH_SIZE` per batch: MOVE_TO_GROUP
(Network moves release leases and refuse locked IPs per Thing), SET_SERVICES (a disconnect per
Thing losing data) and SEND_SMS (one message each); ADD_TAGS and REMOVE_TAGS are set-based
within their batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from ..core.auth import Principal
from ..core.db import claim, is_postgres
from ..core.errors import AppError, bad_field, not_found, unknown_reference
from ..core.ids import new_id
from ..events import service as events
from ..models import BulkAction, BulkActionItem, Thing, ThingsGroup, ThingTag, utcnow
from ..things import repository as things_repository
from ..things.schemas import TAG_PATTERN, ServicesPatch, ThingPatch
from ..things.service import Actor, change_state, patch_thing, validate_filters
from . import items
from .items import Outcome
from .schemas import BulkActionCreate, BulkActionOut
from .state import change_state_batch, run_state_batch

BATCH_SIZE = 500
# Things per batch of a state action: one transaction each. Fewer, larger transactions are
# faster on PostgreSQL; SQLite's single write lock is held for the whole batch, so API writes
# wait at most one (smaller) batch there.
STATE_BATCH_SIZE = {"postgresql": 20_000, "sqlite": 2_000}
STALE_AFTER = timedelta(seconds=60)
ANALYZE_FROM = 10_000  # items: a job this large gets the items table's statistics refreshed
STATE_ACTIONS = {"ACTIVATE": "ACTIVE", "SUSPEND": "SUSPENDED", "RETIRE": "RETIRED"}
_TAG = re.compile(TAG_PATTERN)


def view(job: BulkAction) -> BulkActionOut:
    return BulkActionOut.model_validate(job, from_attributes=True)


def _tags(params: dict[str, Any]) -> list[str]:
    tags = params.get("tags")
    if not isinstance(tags, list) or not tags or len(tags) > 50:
        raise bad_field("params.tags", "must be a list of 1 to 50 tags")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise bad_field(f"params.tags.{index}", f"{tag!r} is not a tag "
                            "(letters, digits, _ . : -, at most 64)")
    return sorted(set(tags))


def validate_params(session: Session, account_id: str, action: str,
                    params: dict[str, Any]) -> dict[str, Any]:
    if action in STATE_ACTIONS:
        if params:
            raise bad_field("params", f"{action} takes no params")
        return {}
    if action == "MOVE_TO_GROUP":
        group_id = params.get("things_group_id")
        if set(params) != {"things_group_id"} or not isinstance(group_id, str):
            raise bad_field("params", "MOVE_TO_GROUP takes exactly {things_group_id}")
        if session.scalar(select(ThingsGroup.id).where(ThingsGroup.account_id == account_id,
                                                       ThingsGroup.id == group_id)) is None:
            raise unknown_reference("params.things_group_id", group_id)
        return {"things_group_id": group_id}
    if action in ("ADD_TAGS", "REMOVE_TAGS"):
        if set(params) != {"tags"}:
            raise bad_field("params", f"{action} takes exactly {{tags}}")
        return {"tags": _tags(params)}
    if action == "SET_SERVICES":
        try:
            services = ServicesPatch.model_validate(params, strict=True)
        except ValueError as exc:
            raise bad_field("params", f"SET_SERVICES takes {{data, sms}} booleans ({exc})") from None
        if not services.model_fields_set:
            raise bad_field("params", "SET_SERVICES needs data and/or sms")
        return services.model_dump(exclude_unset=True)
    # SEND_SMS: validated exactly as a single message would be, once for all Things.
    from ..sms.schemas import SmsSend
    from ..sms.service import encode

    try:
        message = SmsSend.model_validate(params)
    except ValueError as exc:
        raise bad_field("params", f"SEND_SMS takes {{text | data_base64, encoding, "
                        f"validity_seconds}} ({exc})") from None
    encode(message.text, message.data_base64, message.encoding)
    return message.model_dump(exclude_none=True)


def _target_query(session: Session, account_id: str, body: BulkActionCreate) -> Select[Any]:
    target = body.target
    statement = select(Thing.id).where(Thing.account_id == account_id)
    if target.tags is not None:
        tags = target.tags.all or target.tags.any
        for index, tag in enumerate(tags):
            if not _TAG.match(tag):
                raise bad_field(f"target.tags.{index}", f"{tag!r} is not a tag")
        if target.tags.all is not None:
            for tag in set(tags):
                statement = statement.where(exists().where(
                    ThingTag.thing_id == Thing.id, ThingTag.account_id == account_id,
                    ThingTag.tag == tag))
        else:
            statement = statement.where(exists().where(
                ThingTag.thing_id == Thing.id, ThingTag.account_id == account_id,
                ThingTag.tag.in_(tags)))
        return statement
    if target.things_group_ids is not None:
        found = set(session.scalars(select(ThingsGroup.id).where(
            ThingsGroup.account_id == account_id, ThingsGroup.id.in_(target.things_group_ids))))
        missing = [g for g in target.things_group_ids if g not in found]
        if missing:
            raise unknown_reference("target.things_group_ids", missing[0])
        return statement.where(Thing.things_group_id.in_(target.things_group_ids))
    assert target.filter is not None
    f = target.filter
    try:
        validate_filters(iccid=f.iccid, imsi=f.imsi, imei=f.imei, ip_address=f.ip_address,
                         tags=f.tag or ())
    except AppError as error:  # name the body field, not the list's query parameter
        for field_error in error.errors:
            field_error.field = f"target.filter.{field_error.field}"
        error.detail = "; ".join(f"{e.field}: {e.message}" for e in error.errors)
        raise
    return things_repository.things_query(
        account_id, state=f.state, things_group_id=f.things_group_id, tags=f.tag or (),
        iccid=f.iccid, imsi=f.imsi, imei=f.imei, ip_address=f.ip_address,
        connection_status=f.connection_status).with_only_columns(Thing.id)


def create_job(session: Session, principal: Principal, body: BulkActionCreate) -> BulkAction:
    params = validate_params(session, principal.account_id, body.action, body.params)
    now = utcnow()
    job = BulkAction(id=new_id("bulk_action"), account_id=principal.account_id,
                     action=body.action, params=params,
                     target=body.target.model_dump(exclude_none=True), dry_run=body.dry_run,
                     status="QUEUED", actor_user_id=principal.user_id,
                     actor_client_id=principal.client_id, created_at=now)
    session.add(job)
    session.flush()
    resolved: int | None = None  # items the target query wrote, all pending
    if body.target.thing_ids is not None:
        _items_from_ids(session, job, body.target.thing_ids)
    elif not body.dry_run:
        query = _target_query(session, principal.account_id, body)
        resolved = session.execute(insert(BulkActionItem.__table__).from_select(
            ["bulk_action_id", "thing_id", "account_id"],
            query.with_only_columns(literal(job.id), Thing.id, literal(principal.account_id))),
            execution_options={"preserve_rowcount": True}).rowcount
    if body.dry_run:
        if body.target.thing_ids is None:
            query = _target_query(session, principal.account_id, body)
            job.total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        else:
            job.total = session.scalar(select(func.count()).where(
                BulkActionItem.bulk_action_id == job.id, BulkActionItem.status.is_(None))) or 0
            session.execute(delete(BulkActionItem).where(BulkActionItem.bulk_action_id == job.id))
        job.status, job.finished_at = "COMPLETED", now
    elif resolved is not None and resolved >= 0:  # counting a million fresh rows again costs
        job.total, failed = resolved, 0
    else:
        job.total = session.scalar(select(func.count()).where(
            BulkActionItem.bulk_action_id == job.id)) or 0
        failed = session.scalar(select(func.count()).where(
            BulkActionItem.bulk_action_id == job.id, BulkActionItem.status == "FAILED")) or 0
    if not body.dry_run:
        job.processed = job.failed = failed
        if job.total == failed:
            _finish(session, job, "COMPLETED", now)
    session.flush()
    return job


def _items_from_ids(session: Session, job: BulkAction, thing_ids: Sequence[str]) -> None:
    unique = list(dict.fromkeys(thing_ids))
    for start in range(0, len(unique), 5000):
        chunk = unique[start:start + 5000]
        found = set(session.scalars(select(Thing.id).where(Thing.account_id == job.account_id,
                                                           Thing.id.in_(chunk))))
        session.execute(insert(BulkActionItem), [
            {"bulk_action_id": job.id, "thing_id": thing_id, "account_id": job.account_id,
             "status": None if thing_id in found else "FAILED",
             "code": None if thing_id in found else "not_found",
             "detail": None if thing_id in found else f"thing {thing_id!r} was not found"}
            for thing_id in chunk])


def require_job(session: Session, account_id: str, job_id: str, *,
                for_update: bool = False) -> BulkAction:
    statement = select(BulkAction).where(BulkAction.account_id == account_id,
                                         BulkAction.id == job_id)
    job = session.scalar(statement.with_for_update() if for_update else statement)
    if job is None:
        raise not_found("bulk action", job_id)
    return job


def cancel(session: Session, job: BulkAction) -> None:
    if job.status in ("QUEUED", "RUNNING"):
        job.cancel_requested = True
        if job.status == "QUEUED":
            _finish(session, job, "CANCELLED", utcnow())
    session.flush()


def _finish(session: Session, job: BulkAction, status: str, now: datetime) -> None:
    job.status = status
    job.finished_at = now
    if status != "QUEUED":
        events.emit(session, job.account_id, "bulk_action.finished",
                    data={"bulk_action_id": job.id, "action": job.action, "status": status,
                          "total": job.total, "succeeded": job.succeeded, "failed": job.failed},
                    occurred_at=now)


# --- the worker side -----------------------------------------------------------------------

def claimable(now: datetime, stale_after: timedelta = STALE_AFTER,  # type: ignore[no-untyped-def]
              owner: str | None = None):
    """QUEUED jobs, RUNNING ones whose worker stopped beating (a crashed process), and the
    caller's own RUNNING job (its loop broke on an error: a worker runs one job at a time)."""
    running = BulkAction.heartbeat_at < now - stale_after
    if owner is not None:
        running = running | (BulkAction.owner == owner)
    return (BulkAction.status == "QUEUED") | ((BulkAction.status == "RUNNING") & running)


def claim_job(session: Session, owner: str, stale_after: timedelta = STALE_AFTER) -> str | None:
    now = utcnow()
    job = session.scalar(claim(session, select(BulkAction).where(
        claimable(now, stale_after, owner)).order_by(BulkAction.id).limit(1)))
    if job is None:
        return None
    if job.started_at is None and job.total >= ANALYZE_FROM and is_postgres(session):
        # The job's items were just written; PostgreSQL's planner has not seen them and would
        # read and sort all of them for every batch rather than walk the primary key.
        session.execute(text("ANALYZE bulk_action_items"))
    job.status = "RUNNING"
    job.owner = owner
    job.heartbeat_at = now
    job.started_at = job.started_at or now
    session.flush()
    return job.id


def release_job(session: Session, job_id: str, owner: str) -> None:
    """A worker stopping cleanly hands its job back at once, not after `stale_after`."""
    session.execute(update(BulkAction).where(
        BulkAction.id == job_id, BulkAction.owner == owner, BulkAction.status == "RUNNING")
        .values(status="QUEUED", owner=None))


def state_batch_size(session: Session) -> int:
    return STATE_BATCH_SIZE["postgresql" if is_postgres(session) else "sqlite"]


def _running_for(job: BulkAction | None, owner: str) -> bool:
    return job is not None and job.owner == owner and job.status == "RUNNING"


def _next_turn(session: Session, job_id: str, owner: str, now: datetime) -> BulkAction | None:
    """The owner's running job, locked for its next batch or round; None when it is not the
    owner's any more, or was cancelled (finished here)."""
    job = session.scalar(select(BulkAction).where(BulkAction.id == job_id).with_for_update())
    if not _running_for(job, owner):
        return None
    assert job is not None
    if job.cancel_requested:
        _finish(session, job, "CANCELLED", now)
        return None
    return job


def run_batch(session: Session, job_id: str, owner: str, state_batch: int | None = None) -> bool:
    """Process one batch of the job's pending items; False when the job is done (or lost)."""
    now = utcnow()
    job = _next_turn(session, job_id, owner, now)
    if job is None:
        return False
    if job.action in STATE_ACTIONS:
        done = run_state_batch(session, job, STATE_ACTIONS[job.action],
                               state_batch or state_batch_size(session), now)
    else:
        thing_ids = list(session.scalars(items.next_batch(job, BATCH_SIZE)))
        done = bool(thing_ids)
        if done:
            items.record(session, job, thing_ids, _apply(session, job, thing_ids))
    if not done:
        _finish(session, job, "COMPLETED", now)
        return False
    job.heartbeat_at = now
    session.flush()
    return True


# --- a state action's batches side by side (PostgreSQL) ----------------------------------------
#
# One UPDATE stream keeps one database core busy. A worker may run a round of several batches
# at once, each in a transaction of its own: their Things, history and events are disjoint, and
# only their last step, recording outcomes on the job row, goes in item order. A batch whose
# predecessor committed moves done_through as a lone batch does; one whose predecessor failed
# still commits, with its successes written on its items.


class JobLost(Exception):
    """The job stopped being this worker's (taken over as stale, or finished) while a batch ran."""


@dataclass(frozen=True)
class Slice:
    thing_ids: list[str]
    # done_through once every slice before this one in its round has committed.
    after: str | None


def plan_slices(session: Session, job_id: str, owner: str, size: int,
                count: int) -> list[Slice] | None:
    """The owner's running state job's next round: up to `count` slices of at most `size`
    pending items, in thing_id order. None when the job is finished (here, on a cancel or when
    nothing is left) or not the owner's."""
    now = utcnow()
    job = _next_turn(session, job_id, owner, now)
    if job is None:
        return None
    assert job.action in STATE_ACTIONS, job.action
    pending = list(session.scalars(items.next_batch(job, size * count)))
    if not pending:
        _finish(session, job, "COMPLETED", now)
        return None
    job.heartbeat_at = now
    session.flush()
    # Even slices (sizes one apart at most), so no short one finishes early and idles its core.
    pieces = math.ceil(len(pending) / size)
    share, longer = divmod(len(pending), pieces)
    slices, after, start = [], job.done_through, 0
    for index in range(pieces):
        chunk = pending[start:start + share + (index < longer)]
        start += len(chunk)
        slices.append(Slice(chunk, after))
        after = chunk[-1]
    return slices


def run_slice(session: Session, job_id: str, owner: str, piece: Slice,
              wait_turn: Callable[[], object]) -> None:
    """One slice of a round, in its own transaction. `wait_turn` returns once the slice before
    it has committed or failed; the job row is taken only then, so the round's changes run side
    by side and their records in order. Raises JobLost, rolling the slice back, when the job is
    no longer the owner's."""
    job = session.get(BulkAction, job_id)
    if not _running_for(job, owner):
        raise JobLost(job_id)
    now = utcnow()
    outcomes = change_state_batch(session, job, STATE_ACTIONS[job.action], piece.thing_ids, now)
    wait_turn()
    job = session.scalar(select(BulkAction).where(BulkAction.id == job_id).with_for_update()
                         .execution_options(populate_existing=True))
    if not _running_for(job, owner):
        raise JobLost(job_id)
    items.record(session, job, piece.thing_ids, outcomes,
                 follows_done_through=job.done_through == piece.after)
    job.heartbeat_at = now
    session.flush()


def _apply(session: Session, job: BulkAction, thing_ids: list[str]) -> dict[str, Outcome]:
    """Each Thing through the single-Thing services; the outcomes that are not successes."""
    actor = Actor(job.actor_user_id, job.actor_client_id, "bulk")
    if job.action in ("ADD_TAGS", "REMOVE_TAGS"):
        return _apply_tags(session, job, thing_ids)
    things = {t.id: t for t in session.scalars(select(Thing).where(
        Thing.account_id == job.account_id, Thing.id.in_(thing_ids)).with_for_update())}
    outcomes: dict[str, Outcome] = {}
    for thing_id in thing_ids:
        thing = things.get(thing_id)
        if thing is None:
            outcomes[thing_id] = items.not_found(thing_id)
            continue
        try:
            _apply_one(session, job, thing, actor)
        except AppError as error:
            outcomes[thing_id] = Outcome("FAILED", error.code, error.detail)
    return outcomes


def _apply_one(session: Session, job: BulkAction, thing: Thing, actor: Actor) -> None:
    if job.action in STATE_ACTIONS:
        change_state(session, thing, STATE_ACTIONS[job.action], actor)
    elif job.action == "MOVE_TO_GROUP":
        patch_thing(session, thing, ThingPatch(things_group_id=job.params["things_group_id"]),
                    actor)
    elif job.action == "SET_SERVICES":
        patch_thing(session, thing, ThingPatch(services=ServicesPatch(**job.params)), actor)
    elif job.action == "SEND_SMS":
        from ..sms.service import submit_mt

        params = job.params
        submit_mt(session, thing, text=params.get("text"), data_base64=params.get("data_base64"),
                  requested=params.get("encoding", "AUTO"),
                  validity_seconds=params.get("validity_seconds", 86400))
    else:
        raise AssertionError(job.action)


def _apply_tags(session: Session, job: BulkAction, thing_ids: list[str]) -> dict[str, Outcome]:
    """Set-based: one statement for the whole batch."""
    tags = job.params["tags"]
    present = set(session.scalars(select(Thing.id).where(Thing.account_id == job.account_id,
                                                         Thing.id.in_(thing_ids))))
    ids = [t for t in thing_ids if t in present]
    if job.action == "REMOVE_TAGS":
        session.execute(delete(ThingTag).where(ThingTag.account_id == job.account_id,
                                               ThingTag.thing_id.in_(ids), ThingTag.tag.in_(tags)))
    else:
        existing = {(row.thing_id, row.tag) for row in session.execute(
            select(ThingTag.thing_id, ThingTag.tag).where(
                ThingTag.account_id == job.account_id, ThingTag.thing_id.in_(ids),
                ThingTag.tag.in_(tags)))}
        rows = [{"thing_id": t, "tag": tag, "account_id": job.account_id}
                for t in ids for tag in tags if (t, tag) not in existing]
        if rows:
            session.execute(insert(ThingTag), rows)
    if ids:
        session.execute(update(Thing).where(Thing.id.in_(ids)).values(updated_at=utcnow()))
    return {t: items.not_found(t) for t in thing_ids if t not in present}


def jobs_query(account_id: str) -> Select[Any]:
    return select(BulkAction).where(BulkAction.account_id == account_id)

