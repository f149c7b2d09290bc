"""The generated swanctl.conf against strongSwan itself: a charon started here, loaded through
its VICI socket with `swanctl --load-all --file ...`.

charon keeps a fixed pid file (/var/run/charon.pid) and, once a connection with
`start_action = start` is loaded, sends IKE packets. The daemon therefore runs in its own mount
and network namespaces (a private /run, only a loopback that is down; without root, inside a
user namespace too), so tests in parallel and a charon of the host do not collide and nothing
leaves the machine. Only where namespaces are unavailable does it run as a plain process.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netkit import created, network_with_pool

from simplane.networks import vpn

CHARON = Path("/usr/lib/ipsec/charon")
SWANCTL = shutil.which("swanctl") or "/usr/sbin/swanctl"
PSK = "s3cret \"quoted\" # not-a-comment {braces}"
PLUGINS = ("random nonce openssl pem pkcs1 x509 pubkey sha1 sha2 hmac aes gcm kdf "
           "kernel-netlink vici socket-default")

pytestmark = pytest.mark.skipif(
    not (CHARON.exists() and os.path.exists(SWANCTL)),
    reason="strongSwan is not installed (Debian packages strongswan-charon and "
           "strongswan-swanctl provide /usr/lib/ipsec/charon and swanctl)")


@dataclass
class Charon:
    uri: str
    env: dict[str, str]
    folder: Path
    process: subprocess.Popen[bytes]
    log: Path

    def swanctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SWANCTL, *args, "--uri", self.uri], env=self.env,
                              capture_output=True, text=True, timeout=60)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _commands() -> list[list[str]]:
    """Ways to start charon, most isolated first. Without root a user namespace grants the
    CAP_NET_ADMIN that its kernel interface needs."""
    inside = ["sh", "-c", f"mount -t tmpfs tmpfs /run && exec {CHARON}"]
    commands = []
    if shutil.which("unshare"):
        if os.geteuid() == 0:
            commands.append(["unshare", "--mount", "--net", *inside])
        commands.append(["unshare", "--user", "--map-root-user", "--mount", "--net", *inside])
    return commands + [[str(CHARON)]]


def _start(command: list[str], folder: Path, env: dict[str, str], uri: str) -> Charon | str:
    """A running charon answering on its VICI socket, or why it did not start."""
    log = folder / "charon.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    daemon = Charon(uri, env, folder, process, log)
    deadline = time.monotonic() + 30
    while daemon.swanctl("--stats").returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            return f"$ {' '.join(command)}\n(exit {process.returncode})\n{daemon.output()}"
        time.sleep(0.05)
    return daemon


@pytest.fixture(scope="module")
def charon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Charon]:
    folder = tmp_path_factory.mktemp("charon")
    socket = folder / "charon.vici"
    conf = folder / "strongswan.conf"
    conf.write_text(f"""
charon {{
  load_modular = no
  load = {PLUGINS}
  port = 0
  port_nat_t = 0
  install_routes = no
  install_virtual_ip = no
  plugins {{
    vici {{
      socket = unix://{socket}
    }}
  }}
  filelog {{
    stderr {{
      default = 1
    }}
  }}
}}
swanctl {{
  load = random nonce openssl pem pkcs1 x509 pubkey
}}
""")
    env = {**os.environ, "STRONGSWAN_CONF": str(conf)}
    failures = []
    for command in _commands():
        started = _start(command, folder, env, f"unix://{socket}")
        if isinstance(started, Charon):
            break
        failures.append(started)
    else:
        pytest.fail("charon did not start:\n" + "\n\n".join(failures))
    try:
        yield started
    finally:
        started.process.terminate()
        try:
            started.process.wait(10)
        except subprocess.TimeoutExpired:
            started.process.kill()
            started.process.wait()


def _load(charon: Charon, text: str, name: str) -> subprocess.CompletedProcess[str]:
    path = charon.folder / f"{name}.conf"
    path.write_text(text)
    return charon.swanctl("--load-all", "--file", str(path))


def test_peer_config_is_accepted_by_strongswan(lab, charon):
    net, pool = network_with_pool(lab.admin, 27)
    tunnel = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json={
        "name": "Head office", "remote_gateway": "8.8.4.4",
        "remote_subnets": ["172.20.0.0/24", "172.20.64.0/20"],
        "ike_proposals": ["aes256gcm16-prfsha384-ecp384", "aes256-sha256-modp2048"],
        "esp_proposals": ["aes256gcm16-ecp384-esn", "aes128-sha256"], "psk": PSK,
        "dpd_seconds": 20}))
    config = lab.admin.get(f"/v1/networks/{net['id']}/vpn-tunnels/{tunnel['id']}/peer-config",
                           params={"format": "swanctl"})
    assert config.status_code == 200, config.text
    name = f"simplane-{tunnel['id']}"

    loaded = _load(charon, config.text, tunnel["id"])
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr + charon.output()
    assert f"loaded connection '{name}'" in loaded.stdout, loaded.stdout
    assert f"loaded ike secret 'ike-{name}'" in loaded.stdout, loaded.stdout
    assert "successfully loaded 1 connections" in loaded.stdout, loaded.stdout
    assert "failed" not in loaded.stdout

    listed = charon.swanctl("--list-conns")
    assert listed.returncode == 0, listed.stderr
    block = listed.stdout[listed.stdout.index(f"{name}: IKEv2"):]
    assert f"remote: {lab.backend.settings.vpn_gateway_ip}" in block
    assert "local:  8.8.4.4" in block
    assert "dpd delay 20s" in block
    assert re.search(r"local:\s+172\.20\.0\.0/24 172\.20\.64\.0/20", block), block
    assert re.search(rf"remote:\s+{re.escape(pool['cidr'])}", block), block
    # The key charon holds is the tunnel's PSK: the 0s form is base64 of exactly those bytes.
    secret = re.search(r"secret = 0s(\S+)", config.text)
    assert secret and base64.b64decode(secret.group(1)).decode() == PSK


def test_viewer_peer_config_is_also_valid_strongswan_syntax(lab, charon):
    net, _ = network_with_pool(lab.admin, 29)
    tunnel = created(lab.admin.post(f"/v1/networks/{net['id']}/vpn-tunnels", json={
        "name": "Branch", "remote_gateway": "8.8.8.8", "remote_subnets": ["172.21.0.0/24"],
        "psk": PSK}))
    config = lab.client("viewer").get(
        f"/v1/networks/{net['id']}/vpn-tunnels/{tunnel['id']}/peer-config")
    assert config.status_code == 200 and "secret = 0s" not in config.text
    loaded = _load(charon, config.text, tunnel["id"] + "-viewer")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr + charon.output()
    assert f"loaded connection 'simplane-{tunnel['id']}'" in loaded.stdout


def _connections(proposals: list[tuple[str, str]], prefix: str) -> str:
    blocks = [f"""  {prefix}{n} {{
    remote_addrs = 203.0.113.1
    proposals = {ike}
    local {{
      auth = psk
    }}
    remote {{
      auth = psk
    }}
    children {{
      {prefix}{n} {{
        esp_proposals = {esp}
      }}
    }}
  }}""" for n, (ike, esp) in enumerate(proposals)]
    return "connections {\n" + "\n".join(blocks) + "\n}\n"


def _every_keyword() -> list[tuple[str, str]]:
    pairs = [(f"{e}-sha256-modp2048", f"{e}-sha256") for e in sorted(vpn.ENCRYPTION)]
    pairs += [(f"{a}-prfsha256-ecp256", a) for a in sorted(vpn.AEAD)]
    pairs += [(f"aes128-{i}-prfsha256-modp2048", f"aes128-{i}") for i in sorted(vpn.INTEGRITY)]
    pairs += [(f"aes128-{i}-modp2048", "aes128-sha256")
              for i in sorted(vpn.INTEGRITY_IMPLYING_PRF)]
    pairs += [(f"aes128-sha256-{p}-modp2048", "aes128-sha256") for p in sorted(vpn.PRF)]
    pairs += [(f"aes128-sha256-{d}", f"aes128-sha256-{d}") for d in sorted(vpn.DH)]
    pairs += [("aes128-sha256-modp2048", f"aes128-sha256-{x}") for x in sorted(vpn.ESN)]
    return pairs


def test_every_proposal_the_api_accepts_is_accepted_by_strongswan(charon):
    pairs = _every_keyword()
    for ike, esp in pairs:
        assert vpn.proposal_problem(ike, ike=True) is None, ike
        assert vpn.proposal_problem(esp, ike=False) is None, esp
    path = charon.folder / "keywords.conf"
    path.write_text(_connections(pairs, "kw"))
    loaded = charon.swanctl("--load-conns", "--file", str(path))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr + charon.output()
    assert f"successfully loaded {len(pairs)} connections" in loaded.stdout, loaded.stdout


# Proposals built only of known keywords that strongSwan still refuses; the API must refuse
# them too, or it would hand out a configuration that does not load.
REFUSED = [
    ("aes256gcm16-ecp256", "aes256gcm16"),            # AEAD IKE proposal without a PRF
    ("aes256-sha256_96-modp2048", "aes256-sha256"),   # no PRF follows from sha256_96
    ("aes256-modp2048", "aes256-sha256"),             # classic cipher without integrity
    ("aes256-sha256-modp2048", "aes256gcm16-aes128-sha256"),  # AEAD mixed with classic
]


def test_proposals_the_api_refuses_are_refused_by_strongswan(charon):
    for ike, esp in REFUSED:
        assert (vpn.proposal_problem(ike, ike=True) or
                vpn.proposal_problem(esp, ike=False)), (ike, esp)
    path = charon.folder / "refused.conf"
    path.write_text(_connections(REFUSED, "bad"))
    loaded = charon.swanctl("--load-conns", "--file", str(path))
    assert loaded.returncode != 0
    for n in range(len(REFUSED)):
        assert f"loading connection 'bad{n}' failed" in loaded.stdout + loaded.stderr, (
            REFUSED[n], loaded.stdout, loaded.stderr)
