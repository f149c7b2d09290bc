"""What the SMS tests share: an ACTIVE Thing, a network client, polling the asynchronous SMSC
worker, the event trail of a message, and attaching a Thing with real RADIUS packets
(FreeRADIUS's `radclient`, as a packet gateway would send them)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

RADIUS_SECRET = "testing123"
APN = "simplane.m2m"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def active_thing(tenant: Any, **patch: Any) -> dict:
    """A freshly shipped Thing made ACTIVE (services.sms is on by default)."""
    thing = tenant.things(1)[0]
    response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE", **patch})
    assert response.status_code == 200, response.text
    return response.json()


def send(client: httpx.Client, thing_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/things/{thing_id}/sms", json=body)


def network_client(base_url: str, client_id: str, secret: str) -> httpx.Client:
    token = httpx.post(f"{base_url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, secret))
    assert token.status_code == 200, token.text
    return httpx.Client(base_url=base_url, timeout=30, headers={
        "Authorization": f"Bearer {token.json()['access_token']}"})


def wait_for(probe: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll until `probe()` is truthy: the SMSC worker runs on its own thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_status(client: httpx.Client, sms_id: str, status: str) -> dict:
    def probe() -> dict | None:
        message = client.get(f"/v1/sms/{sms_id}").json()
        return message if message["status"] == status else None

    return wait_for(probe, f"SMS {sms_id} to become {status}")


def sms_events(client: httpx.Client, thing_id: str, sms_id: str,
               event_type: str = "sms.status_changed") -> list[dict]:
    response = client.get("/v1/events", params={"type": event_type, "thing_id": thing_id,
                                               "limit": 1000})
    assert response.status_code == 200, response.text
    return [e for e in response.json()["items"] if e["data"].get("sms_id") == sms_id]


def transitions(client: httpx.Client, thing_id: str, sms_id: str) -> list[tuple[Any, str]]:
    return [(e["data"]["from"], e["data"]["to"]) for e in sms_events(client, thing_id, sms_id)]


def radclient(port: int, kind: str, attributes: dict[str, object]) -> str:
    text = "\n".join(f'{name} = "{value}"' if isinstance(value, str) else f"{name} = {value}"
                     for name, value in attributes.items()) + "\n"
    done = subprocess.run(["radclient", "-x", "-r", "1", "-t", "3", f"127.0.0.1:{port}", kind,
                           RADIUS_SECRET], input=text, capture_output=True, text=True, timeout=30,
                          check=False)
    return done.stdout + done.stderr


def attach(settings: Any, thing: dict, session_id: str) -> None:
    """Access-Request then Accounting-Request Start, as a PGW does when the device attaches."""
    common = {"User-Name": thing["imsi"], "3GPP-IMSI": thing["imsi"], "Called-Station-Id": APN,
              "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": "EUTRAN",
              "NAS-IP-Address": "127.0.0.1"}
    out = radclient(settings.radius_auth_port, "auth", common)
    assert "Received Access-Accept" in out, out
    out = radclient(settings.radius_acct_port, "acct", {
        **common, "Acct-Status-Type": "Start", "Acct-Session-Id": session_id})
    assert "Received Accounting-Response" in out, out


def detach(settings: Any, thing: dict, session_id: str) -> None:
    out = radclient(settings.radius_acct_port, "acct", {
        "User-Name": thing["imsi"], "3GPP-IMSI": thing["imsi"], "Acct-Status-Type": "Stop",
        "Acct-Session-Id": session_id, "NAS-IP-Address": "127.0.0.1"})
    assert "Received Accounting-Response" in out, out
