"""A bulk action's items: the Things its target resolved to, and each one's outcome.

Batches take a job's items in thing_id order, and `bulk_actions.done_through` (committed with
each batch) says how far the job has got. An item's own `status` is written only when it is not
a plain success in that order (a failure, a success after an item that must be taken again, or
a success of a batch run beside an earlier one that did not commit); otherwise it stays NULL
and reads as SUCCEEDED up to done_through and PENDING after it. So a batch of 20,000 successes
costs one write to the job row, not 20,000 writes to its items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, false, func, literal, or_, \
    select, true, update
from sqlalchemy.orm import Session

from ..core.paging import Page, decode_cursor, encode_cursor
from ..models import BulkAction, BulkActionItem
from .schemas import ItemOut

STATUSES = ("PENDING", "SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class Outcome:
    """SUCCEEDED, FAILED (with the single-Thing code and message), or PENDING: not done, the
    next batch takes the item again."""

    status: str
    code: str | None = None
    detail: str | None = None


SUCCEEDED = Outcome("SUCCEEDED")
AGAIN = Outcome("PENDING")


def not_found(thing_id: str) -> Outcome:
    return Outcome("FAILED", "not_found", f"thing {thing_id!r} was not found")


def next_batch(job: BulkAction, limit: int) -> Select[Any]:
    """The thing_ids of the job's next `limit` items, in order: a range of the primary key."""
    statement = select(BulkActionItem.thing_id).where(BulkActionItem.bulk_action_id == job.id,
                                                      BulkActionItem.status.is_(None))
    if job.done_through is not None:
        statement = statement.where(BulkActionItem.thing_id > job.done_through)
    return statement.order_by(BulkActionItem.thing_id).limit(limit)


def record(session: Session, job: BulkAction, batch: Sequence[str],
           outcomes: dict[str, Outcome], *, follows_done_through: bool = True) -> None:
    """The outcomes of one batch (`batch`: its thing_ids as `next_batch` gave them; `outcomes`:
    every one that did not simply succeed), and the job's progress; in the batch's own
    transaction, which holds the job row. `follows_done_through`: False when items before the
    batch are still pending (a batch run beside it, ahead of it, did not finish), so the
    watermark cannot move past them and the batch's successes say so themselves."""
    again = [i for i, thing_id in enumerate(batch) if outcomes.get(thing_id) == AGAIN]
    done = (again[0] if again else len(batch)) if follows_done_through else 0
    if done:
        job.done_through = batch[done - 1]
    written = []
    for index, thing_id in enumerate(batch):
        outcome = outcomes.get(thing_id, SUCCEEDED)
        # Successes after an item taken again are past done_through: they say so themselves.
        if outcome.status == "FAILED" or (outcome == SUCCEEDED and index >= done):
            written.append((thing_id, outcome))
    if written:
        table = BulkActionItem.__table__
        session.execute(
            update(table).where(table.c.bulk_action_id == bindparam("b_job"),
                                table.c.thing_id == bindparam("b_thing"))
            .values(status=bindparam("b_status"), code=bindparam("b_code"),
                    detail=bindparam("b_detail")),
            [{"b_job": job.id, "b_thing": thing_id, "b_status": o.status, "b_code": o.code,
              "b_detail": (o.detail or "")[:300] or None} for thing_id, o in written])
    failed = sum(1 for thing_id in batch if outcomes.get(thing_id, SUCCEEDED).status == "FAILED")
    processed = len(batch) - len(again)
    job.processed += processed
    job.succeeded += processed - failed
    job.failed += failed


def status_of(job: BulkAction) -> ColumnElement[str]:
    """An item's status as a column expression."""
    done = (BulkActionItem.thing_id <= job.done_through if job.done_through is not None
            else false())
    return case((BulkActionItem.status.is_not(None), BulkActionItem.status),
                (done, literal("SUCCEEDED")), else_=literal("PENDING"))


def _where(job: BulkAction, status: str) -> ColumnElement[bool]:
    # The same as status_of(job) == status, in the form the indexes serve.
    done = (BulkActionItem.thing_id <= job.done_through if job.done_through is not None
            else false())
    if status == "FAILED":
        return BulkActionItem.status == "FAILED"
    unset = BulkActionItem.status.is_(None)
    if status == "SUCCEEDED":
        return or_(BulkActionItem.status == "SUCCEEDED", and_(unset, done))
    after = BulkActionItem.thing_id > job.done_through if job.done_through is not None else true()
    return and_(unset, after)


def page(session: Session, job: BulkAction, status: str | None, *, limit: int,
         cursor: str | None) -> Page[ItemOut]:
    statement = select(BulkActionItem.thing_id, status_of(job).label("status"),
                       BulkActionItem.code, BulkActionItem.detail).where(
        BulkActionItem.account_id == job.account_id, BulkActionItem.bulk_action_id == job.id)
    if status:
        statement = statement.where(_where(job, status))
    if cursor:
        statement = statement.where(BulkActionItem.thing_id > decode_cursor(cursor))
    rows = session.execute(statement.order_by(BulkActionItem.thing_id).limit(limit + 1)).all()
    items = [ItemOut(thing_id=r.thing_id, status=r.status, code=r.code, detail=r.detail)
             for r in rows[:limit]]
    return Page(items, encode_cursor(rows[limit - 1].thing_id) if len(rows) > limit else None)


def counts(session: Session, job: BulkAction) -> dict[str, int]:
    """How many of the job's items are in each status."""
    status = status_of(job)
    return dict(session.execute(select(status, func.count()).where(
        BulkActionItem.bulk_action_id == job.id).group_by(status)).all())
