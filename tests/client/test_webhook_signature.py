"""verify_webhook_signature against a delivery the server really made."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from simplane.client import compute_signature, verify_webhook_signature
from simplane.webhooks.delivery import DeliveryWorker


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.deliveries.append((body, self.headers["simplane-signature"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_real_delivery_verifies(tenant, connect, backend, receiver):
    client = connect(tenant)
    hook = client.webhooks.create(receiver.url, event_types=["thing.state_changed"])
    assert hook.secret and client.webhooks.get(hook.id).secret is None  # shown once
    thing = client.things.activate(tenant.things(1)[0]["id"])

    worker = DeliveryWorker(backend.database, backend.settings.resolved_secret_key())
    with httpx.Client(timeout=5) as http:
        for _ in range(50):  # other tests' due deliveries may come first
            worker.run_once(http)
            if receiver.deliveries:
                break
    body, header = receiver.deliveries[0]
    assert json.loads(body)["thing_id"] == thing.id
    assert verify_webhook_signature(hook.secret, body, header)
    assert verify_webhook_signature(hook.secret, body.decode(), header, tolerance=60)
    assert not verify_webhook_signature("another-secret", body, header)
    assert not verify_webhook_signature(hook.secret, body + b" ", header)
    stamp = int(header.split(",")[0].removeprefix("t="))
    assert not verify_webhook_signature(hook.secret, body, header, tolerance=300,
                                        now=stamp + 301)
    deliveries = client.webhooks.deliveries(hook.id).to_list()
    assert [d.status for d in deliveries] == ["DELIVERED"]


def test_signature_format_and_rotation():
    now = int(time.time())
    good = compute_signature("s3cret", b"{}", now)
    assert good.startswith(f"t={now},v1=") and verify_webhook_signature("s3cret", b"{}", good)
    rotated = f"t={now},v1={'0' * 64},v1={good.split('v1=')[1]}"
    assert verify_webhook_signature("s3cret", b"{}", rotated)
    for broken in (None, "", "v1=abc", f"t=x,v1={good.split('v1=')[1]}", f"t={now}"):
        assert not verify_webhook_signature("s3cret", b"{}", broken)
