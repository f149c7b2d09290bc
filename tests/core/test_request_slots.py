"""`SIMPLANE_REQUEST_CONCURRENCY`: how many requests of one process hold a database session at
once; the others wait their turn (`core.deps.RequestSlots`). The reads that run on the event
loop (`core.reads`) hold no session and take no slot."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import select, text
from test_rate_limits import token_of

from simplane.models import Thing


def _blocked_patch_then_read(tenant, backend, client: httpx.Client,  # type: ignore[no-untyped-def]
                             read_path: str) -> tuple[int | None, int]:
    """A PATCH of a Thing that another transaction holds locked (PostgreSQL: the row; SQLite:
    the database's write lock) is waiting in its slot while another Thing is read: the read's
    status, or None when it got no answer in 2 s; then the PATCH's, once the lock is gone."""
    locked, other = tenant.things(2)
    patched: list[int] = []
    with backend.database.transaction() as session:
        session.execute(select(Thing.id).where(Thing.id == locked["id"]).with_for_update())
        waiting = threading.Thread(target=lambda: patched.append(client.patch(
            f"/v1/things/{locked['id']}", json={"name": "held"}).status_code))
        waiting.start()
        _until_waiting(backend)
        try:
            read: int | None = client.get(read_path.format(id=other["id"]), timeout=2).status_code
        except httpx.ReadTimeout:
            read = None
    waiting.join()
    return read, patched[0]


def _until_waiting(backend) -> None:  # type: ignore[no-untyped-def]
    """Until the PATCH waits for the lock (PostgreSQL shows it; SQLite's wait is inside the
    driver's busy handler, so give it a second)."""
    if backend.name != "postgresql":
        time.sleep(1.0)
        return
    deadline = time.monotonic() + 10
    with backend.database.engine.connect() as conn:
        while not conn.execute(text(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock')")).scalar_one():
            assert time.monotonic() < deadline, "the PATCH never waited for the lock"
            time.sleep(0.02)
            conn.rollback()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_request_waiting_in_the_database_holds_one_of_the_processs_slots(
        concurrency, tenant, backend, build_app, serve, clients):  # type: ignore[no-untyped-def]
    base_url = serve(build_app(request_concurrency=concurrency))
    client = clients(base_url, token_of(tenant.admin))
    # A read that runs in a session (in the thread pool).
    read, patched = _blocked_patch_then_read(tenant, backend, client,
                                             "/v1/things/{id}/state-history")
    # One slot: the read waits behind the PATCH. Two: it goes by.
    assert read == (None if concurrency == 1 else 200)
    assert patched == 200


def test_a_read_on_the_event_loop_goes_by_a_request_that_holds_the_only_slot(
        tenant, backend, build_app, serve, clients):  # type: ignore[no-untyped-def]
    base_url = serve(build_app(request_concurrency=1))
    client = clients(base_url, token_of(tenant.admin))
    read, patched = _blocked_patch_then_read(tenant, backend, client, "/v1/things/{id}")
    assert (read, patched) == (200, 200)
