import httpx
import pytest

from conftest import ServerThread, free_port
from simplane.app import create_app
from simplane.core.config import load_settings
from simplane.users.service import create_network_credential


@pytest.fixture
def live(backend):
    settings = load_settings(**{**backend.settings.model_dump(), "radius_enabled": False})
    with ServerThread(create_app(settings, backend.database), free_port(), lifespan="on") as s:
        yield s


def test_sms_flow(live, backend, tenant):
    import time
    thing = tenant.things(1)[0]
    c = httpx.Client(base_url=live.base_url, headers=tenant.admin.headers)
    assert c.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"}).status_code == 200
    r = c.post(f"/v1/things/{thing['id']}/sms", json={"text": "hello €"})
    assert r.status_code == 202, r.text
    assert r.json()["segments"] == 1 and r.json()["status"] == "QUEUED"
    with backend.database.transaction() as session:
        from simplane.models import Thing
        session.get(Thing, thing["id"]).connection_status = "ATTACHED"
    for _ in range(50):
        m = c.get(r.headers["Location"]).json()
        if m["status"] == "DELIVERED":
            break
        time.sleep(0.1)
    assert m["status"] == "DELIVERED"
    with backend.database.transaction() as session:
        cid, secret = create_network_credential(session, "smsc")
    tok = httpx.post(live.base_url + "/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)).json()["access_token"]
    n = httpx.Client(base_url=live.base_url, headers={"Authorization": f"Bearer {tok}"})
    mo = n.post("/v1/network/sms", json={"imsi": thing["imsi"], "text": "hi"})
    assert mo.status_code == 201, mo.text
    assert n.get("/v1/things").status_code == 403
    assert c.post("/v1/network/sms", json={"imsi": thing["imsi"], "text": "hi"}).status_code == 403
    u = c.get(f"/v1/things/{thing['id']}/usage").json()["items"][0]
    assert u["sms_mt"] == 1 and u["sms_mo"] == 1, u
