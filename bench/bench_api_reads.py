"""API reads: `GET /v1/things/{id}` and `GET /v1/things?limit=100` under 32 concurrent
connections (operations.md §5), on PostgreSQL and on SQLite.

The product is `simplane serve` (the real CLI, with its background workers and RADIUS listeners
on spare ports) on a fresh database holding one account and its Things; the token comes from the
real `/v1/oauth2/token`. The load is `wrk` with a Lua script that sends the bearer token and,
for the single-Thing read, walks over every Thing id.

The baseline, in the same run, on the same database and under the same uvicorn with the same
number of worker processes, is `bench/_bare_api.py`: a plain ASGI callable that runs the SQL the
product issues for each request (captured from the product here, with an engine event and
the DEBUG log of `simplane.reads`, and checked to be the whole conversation) and answers
byte-identical bodies, ETag and Link headers. Both servers run side by side and each endpoint
is loaded A B B A (product, bare, bare, product); each side's figure is its rate over its two
runs and the worse of its two p99s.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench._data import BENCH_SECRET, Tenant, bench_settings, create_tenant, insert_things
from bench._harness import ROOT, Context, Measurement, free_port, wait_for_port
from simplane.core.db import POOL_SIZE, Database

CONNECTIONS = 32
THREADS = 2
# One worker process per core: a worker is one Python interpreter (one GIL), so more workers
# than cores only adds context switches, and fewer leaves a core to wrk and the database alone.
WORKERS = int(os.environ.get("SIMPLANE_BENCH_API_WORKERS", "2"))
LIST_LIMIT = 100
TARGET_RATIO = 0.6
TARGET_P99_MS = 50.0

_LUA = r"""
-- args: token, file of request paths (one per line). Each thread walks the paths from its own
-- starting point, so the single-Thing read touches every Thing.
local paths = {}
local index = 1

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  for line in io.lines(args[2]) do paths[#paths + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  index = math.random(#paths)
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"non_2xx":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""

ENDPOINTS = (("api GET /v1/things/{id}", "get_thing"), ("api GET /v1/things?limit=100", "list_things"))


def run(ctx: Context) -> list[Measurement]:
    measurements: list[Measurement] = []
    for engine, database in (("postgresql", ctx.postgres), ("sqlite", ctx.sqlite)):
        if ctx.only_engine and ctx.only_engine != engine:
            continue
        with database("api") as url:
            measurements += _measure(ctx, engine, url)
    return measurements


def _measure(ctx: Context, engine: str, url: str) -> list[Measurement]:
    things = ctx.size(100_000, minimum=10_000)
    seconds = 12 if ctx.scale >= 0.5 else 5
    warmup = 3 if ctx.scale >= 0.5 else 2
    work = ctx.work_dir / f"api-{engine}"
    work.mkdir(parents=True, exist_ok=True)

    database = Database(url)
    settings = bench_settings(url, data_dir=str(work), radius_enabled=False)
    tenant = create_tenant(database, settings)
    # Every Thing carries a tag, so the tag look-up each read makes finds rows.
    ids = insert_things(database, tenant, things, tag="fleet-1")
    # Capture what the product says to the database for each read (in-process, same code and
    # settings as the served app): the bare app replays exactly that.
    statements = _capture_statements(database, settings, tenant, ids)
    database.dispose()

    script = work / "api.lua"
    script.write_text(_LUA)
    thing_paths = work / "thing-paths.txt"
    thing_paths.write_text("".join(f"/v1/things/{i}\n" for i in ids))
    list_paths = work / "list-paths.txt"
    list_paths.write_text(f"/v1/things?limit={LIST_LIMIT}\n")
    paths = {"get_thing": thing_paths, "list_things": list_paths}
    samples = [f"/v1/things/{ids[n]}" for n in (0, len(ids) // 2, len(ids) - 1)]
    samples.append(f"/v1/things?limit={LIST_LIMIT}")

    config = work / "bare.json"
    config.write_text(json.dumps({
        "dbapi_url": _dbapi_url(url), "secret_key": BENCH_SECRET, "pool_size": POOL_SIZE,  # the product's
        "statements": statements}))
    results: dict[tuple[str, str], dict[str, Any]] = {}
    product_port = free_port()
    bare_port = next(port for port in iter(free_port, None) if port != product_port)
    with _product_server(url, work, product_port) as (log_path, product_group), \
            _bare_server(config, work, bare_port) as (_, bare_group):
        token = _token(product_port, tenant)
        for path in samples:
            answer, got = _fetch(product_port, token, path), _fetch(bare_port, token, path)
            if got != answer:
                raise RuntimeError(f"the bare app answers {path} differently from the product:"
                                   f"\n{got}\n!=\n{answer}")
        servers = {"product": (product_port, product_group), "bare": (bare_port, bare_group)}
        for _, endpoint in ENDPOINTS:
            # A B B A, both servers up: a drift of the host's speed during the run (it
            # varies by a quarter within an hour here) falls on both sides alike.
            runs: dict[str, list[dict[str, Any]]] = {"product": [], "bare": []}
            for side in ("product", "bare", "bare", "product"):
                port, group = servers[side]
                runs[side].append(_wrk(port, token, script, paths[endpoint], seconds, warmup,
                                       group))
            for side, side_runs in runs.items():
                results[(side, endpoint)] = _combined(side_runs)
    _check_log(log_path)

    measurements = []
    for name, endpoint in ENDPOINTS:
        ours, bare = results[("product", endpoint)], results[("bare", endpoint)]
        details = {
            "p50_ms": ours["p50_ms"], "p99_ms": ours["p99_ms"], "non_2xx": ours["non_2xx"],
            "requests": ours["requests"], "duration_s": ours["duration_s"],
            "baseline_p50_ms": bare["p50_ms"], "baseline_p99_ms": bare["p99_ms"],
            "baseline_non_2xx": bare["non_2xx"], "baseline_requests": bare["requests"],
            "server_cpu_ms_per_request": ours["cpu_ms_per_request"],
            "baseline_server_cpu_ms_per_request": bare["cpu_ms_per_request"],
            "connections": CONNECTIONS, "threads": THREADS, "workers": WORKERS,
            "things": things, "warmup_s": warmup, "load": "wrk", "order": "ABBA",
            "runs": ours["runs"], "baseline_runs": bare["runs"],
        }
        measurements.append(Measurement(
            name, engine, ours["rps"], "req/s", bare["rps"], "bare ASGI app, same SQL",
            target_ratio=TARGET_RATIO, details=details))
        measurements.append(Measurement(
            f"{name} p99", engine, ours["p99_ms"], "ms", bare["p99_ms"],
            "bare ASGI app, same SQL", higher_is_better=False, target_max=TARGET_P99_MS,
            details=details))
    return measurements


# --- the SQL the product issues ------------------------------------------------------------

def _capture_statements(database: Database, settings, tenant: Tenant,  # type: ignore[no-untyped-def]
                        ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    from fastapi.testclient import TestClient

    from simplane.app import create_app
    from simplane.core.security import TokenSigner

    token = TokenSigner(settings.resolved_secret_key()).issue(
        tenant.client_id, tenant.account_id, 3600)
    app = create_app(settings, database)  # no lifespan: no background workers here
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    class RecordReads(logging.Handler):
        # What the reads of `core.reads` run, by the driver itself, past the engine's events.
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.sql, record.parameters))  # type: ignore[attr-defined]

    captured: dict[str, list[dict[str, Any]]] = {}
    thing_id = ids[len(ids) // 2]
    event.listen(database.engine, "before_cursor_execute", record)
    reads_log = logging.getLogger("simplane.reads")
    handler, level = RecordReads(), reads_log.level
    reads_log.addHandler(handler)
    reads_log.setLevel(logging.DEBUG)
    try:
        client = TestClient(app)
        for name, path in (("get_thing", f"/v1/things/{thing_id}"),
                           ("list_things", f"/v1/things?limit={LIST_LIMIT}")):
            seen.clear()
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
            known = {"client_id": tenant.client_id, "account_id": tenant.account_id,
                     "thing_id": thing_id, "fetch": LIST_LIMIT + 1}
            queries = [(s, p) for s, p in seen
                       if s.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK")]
            # The credential, then the rows with their tags (a `tags` column).
            if len(queries) != 2 or not all(q.lstrip().upper().startswith("SELECT")
                                            for q, _ in queries):
                raise RuntimeError(f"{path}: the product's SQL changed shape, the bare app "
                                   f"replays credential, rows: {queries}")
            captured[name] = [_roles(s, p, known) for s, p in queries]
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
        reads_log.removeHandler(handler)
        reads_log.setLevel(level)
    return captured


def _roles(statement: str, parameters: Any, known: dict[str, Any]) -> dict[str, Any]:
    """Name where each bound value of a captured statement comes from in a request."""
    items = (list(parameters.items()) if isinstance(parameters, dict)
             else list(enumerate(parameters)))
    params = []
    for key, value in items:
        role = next((r for r, v in known.items() if v == value and r != "thing_id"), None)
        if value == known["thing_id"]:
            role = "thing_id"
        elif role is None:
            role = "literal:" + json.dumps(value)
        params.append([key, role])
    return {"sql": statement, "params": params}


# --- servers -------------------------------------------------------------------------------

def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@contextmanager
def _process(command: list[str], env: dict[str, str], log_path: Path,
             port: int) -> Iterator[tuple[Path, int]]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log,
                                   start_new_session=True)
    try:
        try:
            _wait_ready(port, process, log_path)
        except RuntimeError as exc:
            raise RuntimeError(f"{' '.join(command)} did not start ({exc}):\n"
                               f"{log_path.read_text()[-3000:]}") from None
        yield log_path, process.pid
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


@contextmanager
def _product_server(url: str, work: Path, port: int) -> Iterator[tuple[Path, int]]:
    env = _environment(
        SIMPLANE_DATABASE_URL=url, SIMPLANE_SECRET_KEY=BENCH_SECRET, SIMPLANE_DATA_DIR=str(work),
        # The figure is the product's throughput, not its rate limiter's verdict.
        SIMPLANE_RATE_LIMIT_PER_SECOND="1000000", SIMPLANE_RATE_LIMIT_BURST="1000000",
        SIMPLANE_TOKEN_RATE_LIMIT_PER_MINUTE="1000000",
        # RADIUS runs as in production, on ports of its own (0: any free port).
        SIMPLANE_RADIUS_AUTH_PORT="0", SIMPLANE_RADIUS_ACCT_PORT="0")
    command = [sys.executable, "-m", "simplane.cli.main", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(WORKERS)]
    with _process(command, env, work / "product.log", port) as server:
        yield server


@contextmanager
def _bare_server(config: Path, work: Path, port: int) -> Iterator[tuple[Path, int]]:
    command = [sys.executable, "-m", "uvicorn", "bench._bare_api:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(WORKERS), "--no-access-log"]
    with _process(command, _environment(BARE_API_CONFIG=str(config)), work / "bare.log",
                  port) as server:
        yield server


def _wait_ready(port: int, process: subprocess.Popen, log_path: Path,
                timeout: float = 120.0) -> None:
    """Until every worker has started: uvicorn's master listens before its workers have
    imported the app, and a load run must not start against a half-started server."""
    wait_for_port(port, timeout=timeout)
    deadline = time.monotonic() + timeout
    while log_path.read_text(errors="replace").count("Application startup complete") < WORKERS:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every worker started after {timeout:.0f} s")
        time.sleep(0.1)


def _check_log(log_path: Path) -> None:
    errors = [line for line in log_path.read_text().splitlines()
              if '"level": "error"' in line or "Traceback" in line]
    if errors:
        raise RuntimeError(f"the product logged errors during the run: {errors[:3]}")


def _dbapi_url(url: str) -> str:
    if url.startswith("sqlite"):
        return url
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- HTTP ----------------------------------------------------------------------------------

def _token(port: int, tenant: Tenant) -> str:
    response = httpx.post(f"http://127.0.0.1:{port}/v1/oauth2/token",
                          data={"grant_type": "client_credentials"},
                          auth=(tenant.client_id, tenant.client_secret), timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def _fetch(port: int, token: str, path: str) -> tuple[int, bytes, str | None, str | None]:
    response = httpx.get(f"http://127.0.0.1:{port}{path}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    link = response.headers.get("link")
    if link:  # the port differs between the two servers; the rest must not
        link = link.replace(f":{port}/", ":PORT/")
    return response.status_code, response.content, response.headers.get("etag"), link


def _combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Two runs of one side as one: the rate over both, the worse p50 and p99."""
    requests = sum(run["requests"] for run in runs)
    duration = sum(run["duration_s"] for run in runs)
    return {"rps": requests / duration, "requests": requests, "duration_s": round(duration, 2),
            "p50_ms": max(run["p50_ms"] for run in runs),
            "p99_ms": max(run["p99_ms"] for run in runs),
            "non_2xx": sum(run["non_2xx"] for run in runs),
            "cpu_ms_per_request": round(sum(run["cpu_ms_per_request"] * run["requests"]
                                            for run in runs) / requests, 3),
            "runs": [{key: run[key] for key in ("rps", "p50_ms", "p99_ms")} for run in runs]}


def _cpu_seconds(group: int) -> float:
    """User + system CPU time of every live process in a process group (the server and its
    workers): with other work on the machine, CPU per request is steadier than requests/s."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, token: str, script: Path, paths: Path, seconds: int,
         warmup: int, group: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}"

    def once(duration: int) -> dict[str, Any]:
        command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency",
                   "--timeout", "10s", "-s", str(script), url, "--", token, str(paths)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        line = next((l for l in output.splitlines() if l.startswith("WRK_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary:\n{output}")
        return json.loads(line.removeprefix("WRK_JSON "))

    once(warmup)
    cpu = _cpu_seconds(group)
    result = once(seconds)
    cpu = _cpu_seconds(group) - cpu
    failures = {k: result[k] for k in ("non_2xx", "connect_errors", "read_errors",
                                       "write_errors", "timeouts") if result[k]}
    if failures:
        raise RuntimeError(f"wrk against {url} saw errors: {failures}")
    duration = result["duration_us"] / 1e6
    return {"rps": result["requests"] / duration, "requests": result["requests"],
            "duration_s": round(duration, 2), "p50_ms": result["p50_us"] / 1000,
            "p90_ms": result["p90_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
            "max_ms": result["max_us"] / 1000, "non_2xx": result["non_2xx"],
            "cpu_ms_per_request": round(cpu * 1000 / max(1, result["requests"]), 3)}
