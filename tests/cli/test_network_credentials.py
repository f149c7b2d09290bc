"""`simplane network-credentials create`: a platform-level credential for /v1/network/* only."""

from __future__ import annotations

import json
import re

import httpx
from cli_helpers import one_line_error, token


def test_a_network_credential_posts_mo_sms_and_nothing_else(cli, server, tenant):  # type: ignore[no-untyped-def]
    result = cli("network-credentials", "create", "--name", "smsc-link-1", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"client_id", "client_secret"}
    assert created["client_id"].startswith("net_")

    (thing,) = tenant.things(1)
    activated = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"state": "ACTIVE"})
    assert activated.status_code == 200, activated.text
    bearer = {"Authorization": f"Bearer {token(server.base_url, **created)}"}
    with httpx.Client(base_url=server.base_url, headers=bearer) as network:
        mo = network.post("/v1/network/sms", json={"imsi": thing["imsi"], "text": "hello"})
        assert mo.status_code == 201, mo.text
        assert network.get("/v1/things").status_code == 403
        assert network.get(f"/v1/things/{thing['id']}").status_code == 403
    received = tenant.admin.get(f"/v1/things/{thing['id']}/sms").json()["items"]
    assert [(m["direction"], m["text"]) for m in received] == [("MO", "hello")]


def test_the_secret_is_shown_to_humans_once_with_a_warning(cli, server):  # type: ignore[no-untyped-def]
    result = cli("network-credentials", "create", "--name", "mediation")
    assert result.exit_code == 0, result.output
    client_id = re.search(r"Client id:\s+(\S+)", result.stdout).group(1)
    client_secret = re.search(r"Client secret:\s+(\S+)", result.stdout).group(1)
    assert "only this once" in result.stdout
    assert token(server.base_url, client_id, client_secret)
    # Each run is a new credential: nothing shows an existing secret again.
    again = cli("network-credentials", "create", "--name", "mediation", "--json")
    assert json.loads(again.stdout)["client_id"] != client_id


def test_a_name_is_required(cli):  # type: ignore[no-untyped-def]
    assert "--name" in one_line_error(cli("network-credentials", "create", "--name", "  "))
    assert "--name" in one_line_error(cli("network-credentials", "create"))
