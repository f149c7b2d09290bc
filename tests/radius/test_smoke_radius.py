import subprocess

import pytest

from conftest import ServerThread, free_port
from simplane.app import create_app
from simplane.core.config import load_settings
from simplane.core.db import Database


@pytest.fixture
def radius_app(backend):
    settings = load_settings(**{**backend.settings.model_dump(), "radius_auth_port": free_port(),
                                "radius_acct_port": free_port(), "radius_enabled": True})
    app = create_app(settings, backend.database)
    with ServerThread(app, free_port(), lifespan="on") as server:
        yield settings, server


def radclient(port, kind, attrs):
    text = "\n".join(f"{k} = {v}" for k, v in attrs.items())
    return subprocess.run(["radclient", "-x", "-r", "1", "-t", "3", f"127.0.0.1:{port}", kind, "testing123"],
                          input=text, capture_output=True, text=True, timeout=20)


def test_attach(radius_app, tenant):
    settings, server = radius_app
    thing = tenant.things(1)[0]
    tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
    out = radclient(settings.radius_auth_port, "auth", {
        "User-Name": thing["imsi"], "3GPP-IMSI": thing["imsi"], "Called-Station-Id": "simplane.m2m",
        "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": "EUTRAN", "3GPP-IMEISV": "3534900698733101"})
    print(out.stdout, out.stderr)
    assert "Access-Accept" in out.stdout
    out = radclient(settings.radius_acct_port, "acct", {
        "User-Name": thing["imsi"], "3GPP-IMSI": thing["imsi"], "Acct-Status-Type": "Start",
        "Acct-Session-Id": "s1", "Framed-IP-Address": "10.64.0.2", "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": "EUTRAN"})
    print(out.stdout, out.stderr)
    assert "Accounting-Response" in out.stdout
    out = radclient(settings.radius_acct_port, "acct", {
        "User-Name": thing["imsi"], "Acct-Status-Type": "Interim-Update",
        "Acct-Session-Id": "s1", "Acct-Input-Octets": 1000, "Acct-Output-Octets": 5000})
    assert "Accounting-Response" in out.stdout
    t = tenant.admin.get(f"/v1/things/{thing['id']}").json()
    assert t["connection"]["status"] == "ATTACHED", t
    assert t["imei"] is not None
    u = tenant.admin.get(f"/v1/things/{thing['id']}/usage").json()
    assert u["items"][0]["bytes_down"] == 5000, u
    r = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "SUSPENDED"})
    assert r.status_code == 200
    s = tenant.admin.get(f"/v1/things/{thing['id']}/sessions").json()
    assert s["items"][0]["disconnect"]["status"] in ("PENDING", "SENDING", "TIMEOUT"), s
