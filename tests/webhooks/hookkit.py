"""Local webhook receivers: one that records, verifies and answers as scripted, one that never
answers."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from simplane.webhooks.service import verify


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]
    verified: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """Records every POST, checks its signature with the secret it was given (as a customer's
    back end would, with webhooks.service.verify) and answers the scripted statuses in turn,
    then `then` for ever."""

    def __init__(self, statuses: list[int] | None = None, then: int = 200) -> None:
        self.statuses = list(statuses or [])
        self.then = then
        self.secret: str | None = None
        self.got: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    signature = self.headers.get("Simplane-Signature", "")
                    receiver.got.append(Delivery(
                        body, dict(self.headers.items()),
                        receiver.secret is not None and verify(receiver.secret, body, signature)))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.then
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self._lock:
            return len(self.got)

    def of_type(self, event_type: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.got if d.json["type"] == event_type]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DeadReceiver:
    """Accepts connections and never answers: the sender waits until its own timeout."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.accepted = 0
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self._open.append(connection)
            self.accepted += 1

    def close(self) -> None:
        self.listener.close()
        for connection in self._open:
            connection.close()


@contextmanager
def receiving(*args: Any, **kwargs: Any) -> Iterator[Receiver]:
    receiver = Receiver(*args, **kwargs)
    try:
        yield receiver
    finally:
        receiver.close()


def subscribe(client: httpx.Client, receiver: Receiver | DeadReceiver,
              **fields: Any) -> dict[str, Any]:
    """A webhook for the receiver; a Receiver learns the secret shown once."""
    response = client.post("/v1/webhooks", json={"url": receiver.url, **fields})
    assert response.status_code == 201, response.text
    created = response.json()
    if isinstance(receiver, Receiver):
        receiver.secret = created["secret"]
    return created


def deliveries(client: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def change_state(client: httpx.Client, thing_id: str, state: str) -> None:
    response = client.patch(f"/v1/things/{thing_id}", json={"state": state})
    assert response.status_code == 200, response.text
