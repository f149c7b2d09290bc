"""RADIUS: Access-Request -> Access-Accept with IP allocation per second, and accounting records
(Start, Interim-Update, Stop) per second, against `simplane serve` and FreeRADIUS 3 with
`sqlippool`, both on the same PostgreSQL server, in the same run.

simplane: a real `simplane serve` process (its UDP listeners, its database work) on a fresh
migrated database holding one account (its default Network has a /16 pool) and N ACTIVE Things.

FreeRADIUS: `freeradius -f` with a configuration this benchmark writes (a copy of Debian's
/etc/freeradius/3.0 with its own listen ports, client, and a site that does what simplane does):
authorize from SQL (one radcheck row per IMSI: `Auth-Type := Accept`, `Pool-Name := bench`),
allocate from `sqlippool` a pool of the same size (65,533 addresses of a /16) in post-auth, and
accounting into `radacct` through the sql module with `sqlippool` updating and releasing leases.
Its own fresh database on the same PostgreSQL, its schema from Debian's package. Thread pool,
connection pool and queries are the package's defaults; only `skip_locked` is set to
`SKIP LOCKED`, which its queries.conf says to do on PostgreSQL 9.5 and later (the stronger
baseline).

Both get the same datagrams from the same generator (bench/_radius_load.py): N Access-Requests
as a P-GW sends them for distinct ACTIVE SIMs, then for each accepted session a Start, an
Interim-Update and a Stop, `WINDOW` outstanding over `SOCKETS` source ports. Every reply must be
an Accept with an address no other SIM got, and every accounting record answered: anything
else fails the benchmark rather than giving a figure. Each server is measured twice, in the
order simplane, FreeRADIUS, FreeRADIUS, simplane (`ROUND_ORDER`), and each figure pools its
two rounds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyrad import packet as rp
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench import _radius_load as load
from bench._data import BENCH_SECRET, bench_settings, create_tenant, imsi, insert_things
from bench._harness import Context, Measurement, autovacuum_stand_in, fresh_postgres, free_port
from simplane.core.db import Database
from simplane.radius.attributes import load_dictionary

SECRET = b"bench-radius-shared-secret"
APN = "simplane.m2m"
WINDOW = 64
SOCKETS = 16
# `simplane serve --workers`: one process per core, sharing the UDP ports (SO_REUSEPORT), as
# FreeRADIUS's threads use both cores.
WORKERS = int(os.environ.get("SIMPLANE_BENCH_RADIUS_WORKERS", "2"))
TIMEOUT = 3.0
# Two rounds each, in the order A B B A, every round on a fresh database and server: this
# host's speed drifts by up to a third between runs minutes apart, and one round each measured
# the two servers minutes apart. A B B A cancels a steady drift; the figures pool both rounds.
ROUND_ORDER = ("simplane", "freeradius", "freeradius", "simplane")
RETRIES = 3
FREERADIUS_ETC = Path("/etc/freeradius/3.0")
POOL_FIRST, POOL_LAST = 0x0A000002, 0x0A00FFFE  # 10.0.0.0/16 less network, gateway, broadcast


def run(ctx: Context) -> list[Measurement]:
    sims = ctx.size(20_000, minimum=200)
    dictionary = load_dictionary()
    stamp = int(time.time())
    access = load.prepare((_access(n) for n in range(sims)), code=rp.AccessRequest,
                          secret=SECRET, dictionary=dictionary, sockets=SOCKETS)
    probe = load.prepare(({"User-Name": "999999999999999", "3GPP-IMSI": "999999999999999",
                           "Called-Station-Id": APN, "NAS-IP-Address": "127.0.0.1"}
                          for _ in range(SOCKETS * 2)), code=rp.AccessRequest, secret=SECRET,
                         dictionary=dictionary, sockets=SOCKETS * 2)

    def accounting(addresses: list[str | None]) -> list[load.Prepared]:
        return [load.prepare((_accounting(n, status, addresses[n], stamp) for n in range(sims)),
                             code=rp.AccountingRequest, secret=SECRET, dictionary=dictionary,
                             sockets=SOCKETS)
                for status in ("Start", "Interim-Update", "Stop")]

    rounds: dict[str, list[dict]] = {"simplane": [], "freeradius": []}
    for name in ROUND_ORDER:
        server = _simplane(ctx, sims) if name == "simplane" else _freeradius(ctx, sims)
        rounds[name].append(_measure(name, server, access, probe, accounting, sims))
    ours, theirs = rounds["simplane"], rounds["freeradius"]

    common = {"sims": sims, "window": WINDOW, "source_sockets": SOCKETS,
              "simplane_workers": WORKERS, "timeout_s": TIMEOUT, "retries": RETRIES,
              "pool": "10.0.0.0/16 (65,533 usable)", "rounds": list(ROUND_ORDER)}
    return [
        Measurement("radius access-request+allocation", "postgresql",
                    _rate([r["access"] for r in ours]), "req/s",
                    _rate([r["access"] for r in theirs]), "FreeRADIUS 3 + sqlippool", True, 1.0,
                    details={**common, "simplane": [r["access"].summary() for r in ours],
                             "freeradius": [r["access"].summary() for r in theirs],
                             "simplane_checks": [r["checks"] for r in ours],
                             "freeradius_checks": [r["checks"] for r in theirs]}),
        Measurement("radius accounting", "postgresql",
                    _rate([a for r in ours for a in r["accounting"]]), "req/s",
                    _rate([a for r in theirs for a in r["accounting"]]),
                    "FreeRADIUS 3 sql + sqlippool", True, 1.0,
                    details={**common, "records_per_session": 3,
                             "simplane": [[a.summary() for a in r["accounting"]] for r in ours],
                             "freeradius": [[a.summary() for a in r["accounting"]]
                                            for r in theirs]}),
    ]


def _rate(results: list[load.Result]) -> float:
    seconds = sum(r.seconds for r in results)
    return sum(r.requests for r in results) / seconds if seconds else 0.0


def _msisdn(n: int) -> str:
    return f"3161{n:08d}"


def _imeisv(n: int) -> str:
    return f"35693803{n % 1_000_000:06d}01"


def _access(n: int) -> dict[str, object]:
    """An Access-Request as a P-GW sends it for an LTE attach in the Netherlands (TS 29.061)."""
    sim = imsi(n)
    return {"User-Name": sim, "3GPP-IMSI": sim, "Called-Station-Id": APN,
            "Calling-Station-Id": _msisdn(n), "3GPP-IMSI-MCC-MNC": sim[:5],
            "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": 6,
            "3GPP-IMEISV": _imeisv(n).encode(), "3GPP-Charging-ID": n + 1,
            "NAS-IP-Address": "127.0.0.1", "NAS-Identifier": "bench-pgw",
            "Service-Type": 2, "Framed-Protocol": 7}


def _accounting(n: int, status: str, address: str | None, stamp: int) -> dict[str, object]:
    sim = imsi(n)
    attributes: dict[str, object] = {
        "Acct-Status-Type": status, "Acct-Session-Id": f"bench-{n:08x}", "User-Name": sim,
        "3GPP-IMSI": sim, "Called-Station-Id": APN, "Calling-Station-Id": _msisdn(n),
        "Framed-IP-Address": address, "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": 6,
        "3GPP-IMEISV": _imeisv(n).encode(), "3GPP-Charging-ID": n + 1,
        "NAS-IP-Address": "127.0.0.1", "NAS-Identifier": "bench-pgw",
        "Event-Timestamp": stamp}
    if status != "Start":
        used = 1 if status == "Interim-Update" else 2
        attributes.update({"Acct-Session-Time": 300 * used,
                           "Acct-Input-Octets": 40_000 * used + n % 1000,
                           "Acct-Output-Octets": 300_000 * used + n % 1000,
                           "Acct-Input-Gigawords": 0, "Acct-Output-Gigawords": 0})
    if status == "Stop":
        attributes["Acct-Terminate-Cause"] = 1
    return attributes


def _measure(name: str, server, access: load.Prepared, probe: load.Prepared,  # type: ignore[no-untyped-def]
             accounting, sims: int) -> dict:
    with server as (auth_port, acct_port, verify):
        load.probe("127.0.0.1", auth_port, SECRET, probe)
        attach = load.send("127.0.0.1", auth_port, SECRET, access, window=WINDOW,
                           timeout=TIMEOUT, retries=RETRIES, expect=rp.AccessAccept)
        accepted = attach.codes[rp.AccessAccept]
        addresses = [a for a in attach.addresses if a is not None]
        if accepted != sims or attach.timeouts or len(set(addresses)) != sims:
            raise RuntimeError(f"{name}: {accepted} of {sims} Access-Requests accepted with "
                               f"{len(set(addresses))} distinct addresses: {attach.summary()}")
        records = []
        for prepared in accounting(attach.addresses):
            result = load.send("127.0.0.1", acct_port, SECRET, prepared, window=WINDOW,
                               timeout=TIMEOUT, retries=RETRIES)
            if result.codes[rp.AccountingResponse] != sims or result.timeouts:
                raise RuntimeError(f"{name}: accounting not all answered: {result.summary()}")
            records.append(result)
        checks = verify()
    return {"access": attach, "accounting": records, "checks": checks}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- simplane ------------------------------------------------------------------------------

@contextmanager
def _simplane(ctx: Context, sims: int) -> Iterator[tuple]:
    with ctx.postgres("radius") as url:
        database = Database(url)
        try:
            settings = bench_settings(url)
            tenant = create_tenant(database, settings, name="radius")
            insert_things(database, tenant, sims, state="ACTIVE")
        finally:
            database.dispose()
        auth_port, acct_port = _free_udp_port(), _free_udp_port()
        http_port = free_port()
        data_dir = ctx.work_dir / "radius-simplane"
        data_dir.mkdir(exist_ok=True)
        env = {**os.environ, "SIMPLANE_DATABASE_URL": url, "SIMPLANE_SECRET_KEY": BENCH_SECRET,
               "SIMPLANE_DATA_DIR": str(data_dir), "SIMPLANE_RADIUS_BIND": "127.0.0.1",
               "SIMPLANE_RADIUS_AUTH_PORT": str(auth_port),
               "SIMPLANE_RADIUS_ACCT_PORT": str(acct_port),
               "SIMPLANE_RADIUS_CLIENTS": f"127.0.0.1/32={SECRET.decode()}",
               "SIMPLANE_RADIUS_DISCONNECT_PORT": str(_free_udp_port()),
               "SIMPLANE_ACCOUNT_IP_SPACE": settings.account_ip_space,
               "SIMPLANE_NAT_PUBLIC_RANGE": settings.nat_public_range}
        log_path = data_dir / "serve.log"
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "simplane.cli.main", "serve", "--host", "127.0.0.1",
                 "--port", str(http_port), "--workers", str(WORKERS)],
                env=env, cwd=data_dir, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            _wait_for_log(process, log_path, "radius listening", WORKERS)

            def verify() -> dict:
                return _simplane_checks(url, tenant.account_id)

            with autovacuum_stand_in(url):
                yield auth_port, acct_port, verify
        finally:
            _stop(process)


def _wait_for_log(process: subprocess.Popen, path: Path, needle: str, count: int,
                  deadline: float = 120.0) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{path.read_text()[-3000:]}")
        if path.read_text(errors="replace").count(needle) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no {count} x {needle!r} after {deadline:.0f} s:\n{path.read_text()[-3000:]}")


def _simplane_checks(url: str, account_id: str) -> dict:
    from simplane.models import DataSession, IpLease, UsageRecord

    database = Database(url)
    try:
        with database.transaction(read_only=True) as session:
            leases = session.scalar(select(func.count()).select_from(IpLease).where(
                IpLease.account_id == account_id))
            distinct = session.scalar(select(func.count(func.distinct(IpLease.address))).where(
                IpLease.account_id == account_id))
            closed = session.scalar(select(func.count()).select_from(DataSession).where(
                DataSession.account_id == account_id, DataSession.status == "CLOSED"))
            usage = session.scalar(select(func.count()).select_from(UsageRecord).where(
                UsageRecord.account_id == account_id))
    finally:
        database.dispose()
    return {"leases": leases, "distinct_addresses": distinct, "closed_sessions": closed,
            "usage_records": usage}


# --- FreeRADIUS ----------------------------------------------------------------------------

@contextmanager
def _freeradius(ctx: Context, sims: int) -> Iterator[tuple]:
    if shutil.which("freeradius") is None or not Path(
            "/usr/lib/freeradius/rlm_sql_postgresql.so").exists():
        raise RuntimeError("FreeRADIUS 3 with its PostgreSQL driver is not installed "
                           "(scripts/install-bench-deps.sh)")
    with fresh_postgres(ctx.postgres_url, "radius_freeradius", migrated=False) as url:
        _freeradius_schema(url, sims)
        auth_port, acct_port = _free_udp_port(), _free_udp_port()
        raddb = _freeradius_config(ctx.work_dir / "radius-freeradius", make_url(url),
                                   auth_port, acct_port)
        log_path = raddb.parent / "freeradius.out"
        with log_path.open("w") as log_file:
            process = subprocess.Popen(["freeradius", "-f", "-d", str(raddb)],
                                       stdout=log_file, stderr=subprocess.STDOUT)
        try:
            time.sleep(0.5)
            if process.poll() is not None:
                raise RuntimeError(f"freeradius exited ({process.returncode}):\n"
                                   f"{log_path.read_text()[-3000:]}\n"
                                   f"{(raddb.parent / 'log' / 'radius.log').read_text()[-3000:]}")

            def verify() -> dict:
                return _freeradius_checks(url)

            with autovacuum_stand_in(url):
                yield auth_port, acct_port, verify
        finally:
            _stop(process)


def _freeradius_schema(url: str, sims: int) -> None:
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:  # type: ignore[attr-defined]
                for schema in (FREERADIUS_ETC / "mods-config/sql/main/postgresql/schema.sql",
                               FREERADIUS_ETC / "mods-config/sql/ippool/postgresql/schema.sql"):
                    cursor.execute(schema.read_text())
                # One SIM, one row per check item: what `Auth-Type := Accept` and the pool
                # need. The same IMSIs as simplane's Things.
                cursor.execute("""
                    INSERT INTO radcheck (username, attribute, op, value)
                    SELECT '90170' || lpad(n::text, 10, '0'), a.attribute, ':=', a.value
                    FROM generate_series(0, %(last)s) n
                    CROSS JOIN (VALUES ('Auth-Type', 'Accept'), ('Pool-Name', 'bench'))
                               AS a(attribute, value)
                """, {"last": sims - 1})
                cursor.execute("""
                    INSERT INTO radippool (pool_name, framedipaddress, expiry_time)
                    SELECT 'bench', '0.0.0.0'::inet + a, now() - interval '1 hour'
                    FROM generate_series(%(first)s::bigint, %(last)s::bigint) a
                """, {"first": POOL_FIRST, "last": POOL_LAST})
            raw.commit()
        finally:
            raw.close()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        assert imsi(0).startswith("90170") and len(imsi(0)) == 15
    finally:
        engine.dispose()


SITE = """\
server bench {{
listen {{
	type = auth
	ipaddr = 127.0.0.1
	port = {auth_port}
}}
listen {{
	type = acct
	ipaddr = 127.0.0.1
	port = {acct_port}
}}
authorize {{
	preprocess
	sql
}}
authenticate {{
	Auth-Type PAP {{
		pap
	}}
}}
preacct {{
	preprocess
	acct_unique
}}
accounting {{
	sql
	sqlippool
}}
post-auth {{
	sqlippool
	Post-Auth-Type REJECT {{
		attr_filter.access_reject
	}}
}}
}}
"""

CLIENTS = """\
client bench {{
	ipaddr = 127.0.0.1
	secret = {secret}
	nas_type = other
}}
"""


def _freeradius_config(root: Path, url, auth_port: int, acct_port: int) -> Path:  # type: ignore[no-untyped-def]
    """A copy of Debian's configuration: own paths, ports, client and site; sql pointing at the
    benchmark's database; sqlippool keyed per subscriber. Everything else as shipped."""
    if root.exists():
        shutil.rmtree(root)
    raddb = root / "raddb"
    shutil.copytree(FREERADIUS_ETC, raddb, symlinks=True)
    (root / "log").mkdir()
    (root / "run").mkdir()

    conf = (raddb / "radiusd.conf").read_text()
    conf = _replace(conf, "raddbdir = /etc/freeradius/3.0", f"raddbdir = {raddb}")
    conf = _replace(conf, "logdir = /var/log/freeradius", f"logdir = {root / 'log'}")
    conf = _replace(conf, "run_dir = ${localstatedir}/run/${name}", f"run_dir = {root / 'run'}")
    # Run as the invoking user: the copy lives in the benchmark's own folder.
    conf = _replace(conf, "\tuser = freerad", "#\tuser = freerad")
    conf = _replace(conf, "\tgroup = freerad", "#\tgroup = freerad")
    (raddb / "radiusd.conf").write_text(conf)
    (raddb / "clients.conf").write_text(CLIENTS.format(secret=SECRET.decode()))

    for folder in ("sites-enabled", "mods-enabled"):
        for entry in (raddb / folder).iterdir():
            entry.unlink()
    (raddb / "sites-enabled" / "bench").write_text(SITE.format(auth_port=auth_port,
                                                              acct_port=acct_port))
    for module in ("always", "attr_filter", "expr", "pap", "preprocess"):
        (raddb / "mods-enabled" / module).symlink_to(f"../mods-available/{module}")

    sql = (raddb / "mods-available" / "sql").read_text()
    sql = _replace(sql, 'dialect = "sqlite"', 'dialect = "postgresql"')
    sql = _replace(sql, 'driver = "rlm_sql_null"', 'driver = "rlm_sql_${dialect}"')
    connection = (f"dbname={url.database} host={url.host or '127.0.0.1'} "
                  f"port={url.port or 5432} user={url.username or 'postgres'}")
    if url.password:
        connection += f" password={url.password}"
    sql = _replace(sql, 'radius_db = "radius"', f'radius_db = "{connection}"')
    (raddb / "mods-enabled" / "sql").write_text(sql)

    ippool = (raddb / "mods-available" / "sqlippool").read_text()
    ippool = _replace(ippool, 'dialect = "mysql"', 'dialect = "postgresql"')
    # A P-GW sends no NAS-Port: the subscriber's MSISDN keys the lease (the alternative the
    # module's comment gives), so a SIM keeps its address and SIMs never share one.
    ippool = _replace(ippool, 'pool_key = "%{NAS-Port}"', 'pool_key = "%{Calling-Station-Id}"')
    (raddb / "mods-enabled" / "sqlippool").write_text(ippool)
    queries = raddb / "mods-config/sql/ippool/postgresql/queries.conf"
    queries.write_text(_replace(queries.read_text(), 'skip_locked = ""\n',
                                'skip_locked = "SKIP LOCKED"\n'))
    return raddb


def _replace(text_: str, old: str, new: str) -> str:
    if old not in text_:
        raise RuntimeError(f"FreeRADIUS configuration changed: {old!r} not found")
    return text_.replace(old, new, 1)


def _freeradius_checks(url: str) -> dict:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            leased = conn.execute(text(
                "SELECT count(*) FROM radippool WHERE pool_key <> ''")).scalar_one()
            closed = conn.execute(text(
                "SELECT count(*) FROM radacct WHERE acctstoptime IS NOT NULL")).scalar_one()
            total = conn.execute(text("SELECT count(*) FROM radacct")).scalar_one()
    finally:
        engine.dispose()
    return {"leases": leased, "radacct_rows": total, "closed_sessions": closed}
