"""The library examples of docs/client.md run as written, against the live server."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
PLACEHOLDER_ICCID = "8931440400000000001"


def everyday_blocks() -> list[str]:
    text = DOC.read_text()
    library = text.split("## The command line")[0]
    section = library.split("### Everyday tasks")[1].split("### Lists")[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_six_everyday_tasks_run_as_documented(tenant, connect, tmp_path, monkeypatch):
    blocks = everyday_blocks()
    assert len(blocks) == 6
    monkeypatch.chdir(tmp_path)  # task 5 writes the strongSwan configuration here
    iccid = tenant.ship(1)[0]
    namespace = {"client": connect(tenant, "manager")}
    for block in blocks:
        exec(compile(block.replace(PLACEHOLDER_ICCID, iccid), str(DOC), "exec"), namespace)  # noqa: S102

    client = namespace["client"]
    thing = client.things.lookup(iccid=iccid)
    assert thing.state == "ACTIVE" and thing.ip_locked
    profile = client.ip_profiles.get(client.groups.get(thing.things_group_id).ip_profile_id)
    assert [r.action for r in profile.outbound.rules] == ["ALLOW", "DENY"]
    assert namespace["verdict"].rule_id == profile.outbound.rules[0].id
    network_id = namespace["network_id"]
    assert [r.public_port for r in client.networks.nat_rules.list(network_id)] == [8022]
    assert "93.184.216.34" in (tmp_path / "simplane-office.swanctl.conf").read_text()
    assert [m.text for m in client.sms.list(thing_id=thing.id)] == ["REBOOT"]


def test_the_readme_shows_the_same_everyday_tasks() -> None:
    # The README repeats the examples executed above; it must not drift from them.
    readme = (DOC.parents[1] / "README.md").read_text()
    section = readme.split("### The six everyday tasks with the library", 1)[1].split(
        "### The six everyday tasks with `simplane-cli`", 1)[0]
    shown = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[1:]  # after the connect
    assert shown == everyday_blocks()
