import time

import httpx
import pytest

from simplane.app import create_app
from simplane.core.config import load_settings


@pytest.fixture
def live(backend, pytestconfig):
    root = next(p for p in pytestconfig.pluginmanager.get_plugins() if getattr(p, "__file__", "").endswith("tests/conftest.py"))
    settings = load_settings(**{**backend.settings.model_dump(), "radius_enabled": False})
    with root.ServerThread(create_app(settings, backend.database), root.free_port(), lifespan="on") as s:
        yield s


def test_activate_by_tag(live, tenant):
    things = tenant.things(120)
    c = httpx.Client(base_url=live.base_url, headers=tenant.admin.headers)
    for t in things[:100]:
        c.patch(f"/v1/things/{t['id']}", json={"tags": ["fleet"]})
    c.patch(f"/v1/things/{things[0]['id']}", json={"state": "RETIRED"})
    dry = c.post("/v1/bulk-actions", json={"action": "ACTIVATE", "target": {"tags": {"all": ["fleet"]}}, "dry_run": True})
    assert dry.status_code == 202 and dry.json()["total"] == 100, dry.text
    r = c.post("/v1/bulk-actions", json={"action": "ACTIVATE", "target": {"tags": {"all": ["fleet"]}}})
    assert r.status_code == 202, r.text
    for _ in range(100):
        job = c.get(r.headers["Location"]).json()
        if job["status"] == "COMPLETED":
            break
        time.sleep(0.1)
    assert (job["status"], job["succeeded"], job["failed"]) == ("COMPLETED", 99, 1), job
    failed = c.get(r.headers["Location"] + "/items", params={"status": "FAILED"}).json()["items"]
    assert failed[0]["code"] == "invalid_state_transition"
    assert c.get("/v1/things", params={"state": "ACTIVE", "limit": 1000}).json()["items"].__len__() == 99
