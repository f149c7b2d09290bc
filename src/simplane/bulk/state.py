"""ACTIVATE, SUSPEND and RETIRE of a whole batch of a bulk action's Things in a few statements.

Each Thing gets what `things.service.change_state` gives a single Thing: the same allowed
transitions (a same-state request succeeds without a change), the same failure code and
message, one `thing_state_changes` row (billing reads it), one `thing.state_changed` event and
its webhook outbox rows, `activated_at` on the first activation, a Disconnect-Request of open
sessions on SUSPEND and RETIRE, and on RETIRE the release of the dynamic lease. A RETIRE of a
Thing holding a locked IP also deletes NAT rules and emits `thing.ip_unlocked`: those rare
Things take the single-Thing path, in the same transaction.

The batch's Things are read with their states, each outcome is decided here from the state
table, then the changes are written set-based: on PostgreSQL one statement (a chain of
data-modifying CTEs over arrays); elsewhere executemany, which SQLite runs in C. Everything,
the items' outcomes included, commits in the caller's one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from ..core.db import is_postgres
from ..core.errors import AppError
from ..core.ids import new_ids
from ..models import (
    BulkAction,
    DataSession,
    Event,
    IpLease,
    Thing,
    ThingsGroup,
    ThingStateChange,
    WebhookDelivery,
)
from ..models.base import UTCDateTime
from ..things.service import ALLOWED_TRANSITIONS, Actor, change_state, transition_error
from ..webhooks.service import payload, subscribers
from . import items
from .items import Outcome

EVENT_TYPE = "thing.state_changed"
# request_disconnect's reason for each target state that ends data sessions.
DISCONNECT_REASON = {"SUSPENDED": "suspended", "RETIRED": "retired"}


@dataclass
class _Plan:
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # id, from state, group
    singles: list[str] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # all but plain successes


def run_state_batch(session: Session, job: BulkAction, to_state: str, limit: int,
                    now: datetime) -> bool:
    """The job's next `limit` pending items changed to `to_state`, their outcomes recorded;
    False when none was left."""
    batch = list(session.scalars(items.next_batch(job, limit)))
    if not batch:
        return False
    items.record(session, job, batch, change_state_batch(session, job, to_state, batch, now))
    return True


def change_state_batch(session: Session, job: BulkAction, to_state: str, batch: list[str],
                       now: datetime) -> dict[str, Outcome]:
    """The Things of `batch` (pending items of the job, in thing_id order) changed to
    `to_state`; the outcomes that are not plain successes, for `items.record`."""
    things = (_things_postgres if is_postgres(session) else _things_portable)(
        session, job.account_id, batch)
    plan = _plan([(thing_id, *things.get(thing_id, (None, None, None))) for thing_id in batch],
                 to_state)
    actor = Actor(job.actor_user_id, job.actor_client_id, "bulk")
    if plan.changes:
        apply = _apply_postgres if is_postgres(session) else _apply_portable
        for thing_id in apply(session, job, to_state, actor, plan.changes, now):
            plan.outcomes[thing_id] = items.AGAIN
    _apply_singles(session, job, to_state, actor, plan, now)
    return plan.outcomes


def _things_portable(session: Session, account_id: str,
                     batch: list[str]) -> dict[str, tuple[str, bool, str]]:
    rows = session.execute(select(Thing.id, Thing.state, Thing.ip_locked, Thing.things_group_id)
                           .where(Thing.account_id == account_id, Thing.id.in_(batch)))
    return {row[0]: tuple(row[1:]) for row in rows}  # type: ignore[misc]


def _things_postgres(session: Session, account_id: str,
                     batch: list[str]) -> dict[str, tuple[str, bool, str]]:
    # One array (not 20,000 parameters), and the batch's id range: the planner reads that range
    # of the primary key whatever else it guesses.
    rows = session.execute(text(
        "SELECT id, state, ip_locked, things_group_id FROM things "
        "WHERE account_id = :account_id AND id BETWEEN :first_id AND :last_id "
        "AND id = ANY(string_to_array(:ids, ','))"),
        {"account_id": account_id, "first_id": batch[0], "last_id": batch[-1],
         "ids": ",".join(batch)})
    return {row[0]: tuple(row[1:]) for row in rows}  # type: ignore[misc]


def _plan(rows: Sequence[Any], to_state: str) -> _Plan:
    plan = _Plan()
    for thing_id, state, ip_locked, group_id in rows:
        if state is None:
            plan.outcomes[thing_id] = items.not_found(thing_id)
        elif state == to_state:
            pass  # same-state: succeeds without a change or an event
        elif to_state not in ALLOWED_TRANSITIONS[state]:
            error = transition_error(state, to_state)
            plan.outcomes[thing_id] = Outcome("FAILED", error.code, error.detail)
        elif to_state == "RETIRED" and ip_locked:
            plan.singles.append(thing_id)
        else:
            plan.changes.append((thing_id, state, group_id))
    return plan


def _apply_singles(session: Session, job: BulkAction, to_state: str, actor: Actor, plan: _Plan,
                   now: datetime) -> None:
    if not plan.singles:
        return
    things = {thing.id: thing for thing in session.scalars(select(Thing).where(
        Thing.account_id == job.account_id, Thing.id.in_(plan.singles)).with_for_update())}
    for thing_id in plan.singles:
        thing = things.get(thing_id)
        if thing is None:
            plan.outcomes[thing_id] = items.not_found(thing_id)
            continue
        try:
            change_state(session, thing, to_state, actor, now=now)
        except AppError as error:
            plan.outcomes[thing_id] = Outcome("FAILED", error.code, error.detail)
    session.flush()


# --- the event and its webhook body, exactly as events.emit and webhooks.payload write them --

_MARK = re.compile(r"@@(\w+)@@")


def _event(job: BulkAction, to_state: str, actor: Actor, now: datetime, *, event_id: str,
           thing_id: str, from_state: str) -> Event:
    return Event(id=event_id, account_id=job.account_id, type=EVENT_TYPE, thing_id=thing_id,
                 data={"from": from_state, "to": to_state, "actor_user_id": actor.user_id},
                 occurred_at=now)


def _template(rendered: str, columns: dict[str, str], params: dict[str, Any],
              name: str) -> str:
    """SQL concatenating the literal parts of `rendered` (bound as parameters) with the
    columns its @@marks@@ stand for."""
    parts: list[str] = []
    for index, piece in enumerate(_MARK.split(rendered)):
        if index % 2:
            parts.append(columns[piece])
        elif piece:
            params[f"{name}_{index}"] = piece
            parts.append(f"CAST(:{name}_{index} AS text)")
    return " || ".join(parts)


# --- PostgreSQL: one statement ----------------------------------------------------------------

def _apply_postgres(session: Session, job: BulkAction, to_state: str, actor: Actor,
                    changes: list[tuple[str, str, str]], now: datetime) -> list[str]:
    """Changes the Things whose state is still the one read (the UPDATE's row locks make that
    check race-free) and writes history, events and outbox rows of exactly those; the ids of
    the others (changed meanwhile by someone else)."""
    webhook_ids = subscribers(session, job.account_id, EVENT_TYPE)
    # Lists travel as one comma-separated text each (no id or state has a comma): psycopg
    # would quote-check every element of a list parameter in Python. Every join below is
    # driven by these lists or by an index: `changed` can be 20,000 rows where the planner
    # guesses a handful.
    params: dict[str, Any] = {
        "thing_ids": ",".join(c[0] for c in changes),
        "from_states": ",".join(c[1] for c in changes),
        "history_ids": ",".join(new_ids("state_change", len(changes))),
        "event_ids": ",".join(new_ids("event", len(changes))),
        # Each Thing's outbox row ids, one per subscribed webhook in webhook_ids' order.
        "delivery_ids": ",".join(_delivery_ids(len(changes), len(webhook_ids))),
        "webhook_ids": ",".join(webhook_ids),
        # The batch's first and last id, in the database's own order (changes come in it):
        # the UPDATE reads that index range only, and as constants the planner sizes it.
        "first_id": changes[0][0], "last_id": changes[-1][0],
        "account_id": job.account_id, "to_state": to_state, "now": now,
        "actor_user_id": actor.user_id, "actor_client_id": actor.client_id,
        "source": actor.source, "event_type": EVENT_TYPE,
    }
    data = json.dumps({"from": "@@from@@", "to": to_state, "actor_user_id": actor.user_id})
    columns = {"event": "c.event_id", "thing": "c.id", "from": "c.from_state"}
    sets = ["state = :to_state", "updated_at = :now"]
    if to_state == "ACTIVE":
        sets.append("activated_at = COALESCE(t.activated_at, :now)")
    if to_state == "RETIRED":
        sets.append("ip_address = NULL")  # leases.release_dynamic
    steps = [f"""
        planned AS (
            SELECT * FROM unnest(string_to_array(:thing_ids, ','),
                                 string_to_array(:from_states, ','),
                                 string_to_array(:history_ids, ','),
                                 string_to_array(:event_ids, ','),
                                 string_to_array(:delivery_ids, ','))
                AS p(thing_id, from_state, history_id, event_id, delivery_ids)),
        changed AS (
            UPDATE things t SET {', '.join(sets)}
            FROM planned p
            WHERE t.account_id = :account_id AND t.id = p.thing_id AND t.state = p.from_state
              AND t.id BETWEEN :first_id AND :last_id
            RETURNING t.id, t.things_group_id, p.from_state, p.history_id, p.event_id,
                      p.delivery_ids),
        history AS (
            INSERT INTO thing_state_changes (id, account_id, thing_id, from_state, to_state,
                                             changed_at, actor_user_id, actor_client_id, source)
            SELECT c.history_id, :account_id, c.id, c.from_state, :to_state, :now,
                   :actor_user_id, :actor_client_id, :source
            FROM changed c),
        events AS (
            INSERT INTO events (id, account_id, type, thing_id, data, occurred_at)
            SELECT c.event_id, :account_id, :event_type, c.id,
                   CAST({_template(data, columns, params, 'data')} AS json), :now
            FROM changed c)"""]
    if webhook_ids:
        body = payload(_event(job, to_state, actor, now, event_id="@@event@@",
                              thing_id="@@thing@@", from_state="@@from@@"))
        steps.append(f"""
        deliveries AS (
            INSERT INTO webhook_deliveries (id, account_id, webhook_id, event_id, event_type,
                                            payload, status, attempts, next_attempt_at,
                                            created_at)
            SELECT w.id, :account_id, w.webhook_id, c.event_id, :event_type,
                   {_template(body, columns, params, 'body')}, 'PENDING', 0, :now, :now
            FROM changed c
            CROSS JOIN LATERAL unnest(string_to_array(c.delivery_ids, ';'),
                                      string_to_array(:webhook_ids, ',')) AS w(id, webhook_id))""")
    if to_state in DISCONNECT_REASON:  # radius.disconnect.request_disconnect
        params["reason"] = DISCONNECT_REASON[to_state]
        steps.append("""
        sessions AS (
            UPDATE data_sessions s SET disconnect_status = 'PENDING',
                   disconnect_reason = :reason, disconnect_attempts = 0
            WHERE s.status = 'OPEN' AND s.thing_id IN (SELECT id FROM changed))""")
    if to_state == "RETIRED":  # leases.release_dynamic, on the Network of the Thing's group
        steps.append("""
        leases AS (
            DELETE FROM ip_leases l USING changed c, things_groups g
            WHERE l.thing_id = c.id AND l.kind = 'DYNAMIC' AND g.account_id = :account_id
              AND g.id = c.things_group_id AND l.network_id = g.network_id)""")
    statement = "WITH " + ",".join(steps) + "\nSELECT id FROM changed"
    changed = set(session.execute(text(statement), params).scalars())
    return [c[0] for c in changes if c[0] not in changed]


def _delivery_ids(things: int, webhooks: int) -> list[str]:
    if not webhooks:
        return [""] * things
    ids = new_ids("delivery", things * webhooks)
    return [";".join(ids[i:i + webhooks]) for i in range(0, len(ids), webhooks)]


# --- elsewhere (SQLite): executemany ------------------------------------------------------------

def _apply_portable(session: Session, job: BulkAction, to_state: str, actor: Actor,
                    changes: list[tuple[str, str, str]], now: datetime) -> list[str]:
    """SQLite: the batch's transaction has held the database's one write lock since before
    the read, so every state read is still current."""
    things = Thing.__table__
    values: dict[str, Any] = {"state": to_state, "updated_at": now}
    if to_state == "ACTIVE":
        values["activated_at"] = func.coalesce(things.c.activated_at,
                                               bindparam("b_now", type_=UTCDateTime()))
    statement = update(things).where(things.c.account_id == job.account_id,
                                     things.c.id == bindparam("b_id"),
                                     things.c.state == bindparam("b_from"))
    if to_state == "RETIRED":
        values["ip_address"] = None
    result = session.execute(statement.values(**values),
                             [{"b_id": c[0], "b_from": c[1], "b_now": now} for c in changes])
    if result.rowcount != len(changes):
        raise RuntimeError(f"{len(changes) - result.rowcount} Things changed under a bulk "
                           "action's write lock")
    history_ids = new_ids("state_change", len(changes))
    event_ids = new_ids("event", len(changes))
    session.execute(insert(ThingStateChange), [
        {"id": history_id, "account_id": job.account_id, "thing_id": thing_id,
         "from_state": from_state, "to_state": to_state, "changed_at": now,
         "actor_user_id": actor.user_id, "actor_client_id": actor.client_id,
         "source": actor.source}
        for history_id, (thing_id, from_state, _) in zip(history_ids, changes, strict=True)])
    events = [_event(job, to_state, actor, now, event_id=event_id, thing_id=thing_id,
                     from_state=from_state)
              for event_id, (thing_id, from_state, _) in zip(event_ids, changes, strict=True)]
    session.execute(insert(Event), [
        {"id": e.id, "account_id": e.account_id, "type": e.type, "thing_id": e.thing_id,
         "data": e.data, "occurred_at": e.occurred_at} for e in events])
    webhook_ids = subscribers(session, job.account_id, EVENT_TYPE)
    if webhook_ids:
        delivery_ids = iter(new_ids("delivery", len(events) * len(webhook_ids)))
        session.execute(insert(WebhookDelivery), [
            {"id": next(delivery_ids), "account_id": job.account_id, "webhook_id": webhook_id,
             "event_id": event.id, "event_type": EVENT_TYPE, "payload": body,
             "status": "PENDING", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for event in events for body in (payload(event),) for webhook_id in webhook_ids])
    ids = [{"b_thing": c[0]} for c in changes]
    if to_state in DISCONNECT_REASON:
        sessions = DataSession.__table__
        session.execute(update(sessions).where(sessions.c.thing_id == bindparam("b_thing"),
                                               sessions.c.status == "OPEN")
                        .values(disconnect_status="PENDING",
                                disconnect_reason=DISCONNECT_REASON[to_state],
                                disconnect_attempts=0), ids)
    if to_state == "RETIRED":
        leases, groups = IpLease.__table__, ThingsGroup.__table__
        network = (select(groups.c.network_id)
                   .where(groups.c.account_id == job.account_id,
                          groups.c.id == bindparam("b_group")).scalar_subquery())
        session.execute(delete(leases).where(leases.c.thing_id == bindparam("b_thing"),
                                             leases.c.kind == "DYNAMIC",
                                             leases.c.network_id == network),
                        [{"b_thing": c[0], "b_group": c[2]} for c in changes])
    return []
