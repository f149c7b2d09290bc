"""A receiver that accepts and never answers: given up after the schedule, the API unaffected."""

from __future__ import annotations

import time

from hookkit import DeadReceiver, change_state, deliveries, subscribe
from livekit import ship, wait_for

TIMEOUT = 2.0
# Attempts at 0 s (times out at 2 s) and 2.2 s (times out at 4.2 s); the next would be at 4.6 s,
# beyond the 4 s maximum age: FAILED after two attempts.
SERVER_SETTINGS = {"webhook_retry_base_seconds": 0.2, "webhook_timeout_seconds": TIMEOUT,
                   "webhook_retry_max_age_seconds": 4}
WORKER_THREADS = 4  # webhooks.delivery.DeliveryWorker's default


def test_dead_receiver_is_given_up_and_the_api_does_not_wait_for_it(tenant) -> None:
    thing_id = ship(tenant, 1)[0]
    dead = DeadReceiver()
    try:
        # As many webhooks as delivery threads: every thread is stuck on the dead receiver.
        hooks = [subscribe(tenant.admin, dead)["id"] for _ in range(WORKER_THREADS)]
        change_state(tenant.admin, thing_id, "ACTIVE")
        wait_for(lambda: dead.accepted >= WORKER_THREADS, timeout=10,
                 what="every delivery thread to be waiting on the receiver")

        slowest = 0.0
        for _ in range(3):
            for path in (f"/v1/things/{thing_id}", f"/v1/webhooks/{hooks[0]}/deliveries",
                         "/v1/events"):
                started = time.monotonic()
                assert tenant.admin.get(path).status_code == 200
                slowest = max(slowest, time.monotonic() - started)
        started = time.monotonic()
        renamed = tenant.admin.patch(f"/v1/things/{thing_id}", json={"name": "still fast"})
        assert renamed.status_code == 200  # a write too, while every thread waits
        slowest = max(slowest, time.monotonic() - started)
        assert dead.accepted >= WORKER_THREADS and slowest < TIMEOUT / 2, slowest
        # Measured while the receiver was still being tried, not after it was given up.
        assert {d["status"] for h in hooks for d in deliveries(tenant.admin, h)} <= {
            "SENDING", "PENDING"}

        def given_up() -> list[dict]:
            log = [d for h in hooks for d in deliveries(tenant.admin, h)]
            return log if all(d["status"] == "FAILED" for d in log) else []

        log = wait_for(given_up, timeout=30, interval=0.2, what="the deliveries to be given up")
    finally:
        dead.close()
    assert len(log) == WORKER_THREADS
    assert {d["attempts"] for d in log} == {2}
    assert all(d["last_status_code"] is None and "Timeout" in d["last_error"] for d in log), log
    assert all(d["delivered_at"] is None for d in log)
