import http.server
import json
import threading
import time

import httpx
import pytest

from simplane.app import create_app
from simplane.core.config import load_settings
from simplane.webhooks.service import verify


@pytest.fixture
def live(backend, pytestconfig):
    root = next(p for p in pytestconfig.pluginmanager.get_plugins() if getattr(p, "__file__", "").endswith("tests/conftest.py"))
    settings = load_settings(**{**backend.settings.model_dump(), "radius_enabled": False, "webhook_retry_base_seconds": 0.2})
    with root.ServerThread(create_app(settings, backend.database), root.free_port(), lifespan="on") as s:
        yield s, root.free_port


def test_delivery_with_retries(live, tenant):
    server, free_port = live
    got = []
    fails = {"n": 2}

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, self.headers["Simplane-Signature"]))
            code = 500 if fails["n"] > 0 else 200
            fails["n"] -= 1
            self.send_response(code); self.end_headers()
        def log_message(self, *a): pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    c = httpx.Client(base_url=server.base_url, headers=tenant.admin.headers)
    w = c.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{srv.server_port}/hook", "event_types": ["thing.state_changed"]})
    assert w.status_code == 201, w.text
    secret = w.json()["secret"]
    thing = tenant.things(1)[0]
    c.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
    for _ in range(100):
        if len(got) >= 3:
            break
        time.sleep(0.1)
    srv.shutdown()
    assert len(got) == 3
    ids = {json.loads(b)["id"] for b, _ in got}
    assert len(ids) == 1
    assert all(verify(secret, b, sig) for b, sig in got)
    d = c.get(f"/v1/webhooks/{w.json()['id']}/deliveries").json()["items"]
    assert d[0]["status"] == "DELIVERED" and d[0]["attempts"] == 3, d
