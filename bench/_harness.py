"""What every benchmark shares: sizes, fresh databases, the measurement record and the report.

A benchmark module (`bench/bench_<name>.py`) defines `run(ctx: Context) -> list[Measurement]`.
`python -m bench` runs them in name order, prints each figure beside the baseline measured in the
same run and their ratio, and writes everything to `bench/results/<UTC time>.json`.

Sizes are the issue's (1,000,000 Things, 10,000,000 usage records, ...) times `--scale`
(`SIMPLANE_BENCH_SCALE`), so a quick run while developing is `python -m bench --scale 0.01`.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Measurement:
    """One figure beside its same-run baseline. `higher_is_better` says which way the ratio
    reads: for rates the ratio is figure / baseline; for durations it is baseline / figure, so
    a ratio of 1.0 always means "as fast as the baseline"."""

    benchmark: str
    engine: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    higher_is_better: bool = True
    target_ratio: float | None = None
    # Absolute bound on the figure (seconds or milliseconds), when the issue sets one.
    target_max: float | None = None
    details: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0 or self.figure == 0:
            return None
        return self.figure / self.baseline if self.higher_is_better else self.baseline / self.figure

    @property
    def met(self) -> bool | None:
        checks = []
        if self.target_ratio is not None and self.ratio is not None:
            checks.append(self.ratio >= self.target_ratio)
        if self.target_max is not None:
            checks.append(self.figure <= self.target_max)
        return all(checks) if checks else None

    def as_json(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass
class Context:
    scale: float
    postgres_url: str
    work_dir: Path
    only_engine: str | None = None

    def size(self, full: int, minimum: int = 1) -> int:
        return max(minimum, int(full * self.scale))

    @contextmanager
    def postgres(self, label: str) -> Iterator[str]:
        """A fresh PostgreSQL database migrated to head (SQLAlchemy URL); dropped afterwards."""
        with fresh_postgres(self.postgres_url, label) as url:
            yield url

    @contextmanager
    def sqlite(self, label: str) -> Iterator[str]:
        path = self.work_dir / f"{label}-{secrets.token_hex(3)}.db"
        url = f"sqlite:///{path}"
        migrate(url)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)


def migrate(url: str) -> None:
    from simplane.core.db import Database
    from simplane.core.migrate import upgrade

    database = Database(url)
    try:
        upgrade(database.engine)
    finally:
        database.dispose()


@contextmanager
def fresh_postgres(postgres_url: str, label: str, *, migrated: bool = True) -> Iterator[str]:
    base = make_url(postgres_url).set(drivername="postgresql+psycopg")
    # The pid keeps two runs of one benchmark (two shells, two checkouts) off each other's
    # database: each drops its own at the end.
    name = f"simplane_bench_{label}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def autovacuum_stand_in(url: str, tables: Sequence[str] | None = None,
                        interval: float = 1.0) -> Iterator[None]:
    """What PostgreSQL's autovacuum does during a run, done by the benchmark when the server
    runs without it (this machine's conf.d/90-ci.conf sets `autovacuum = off`; a deployment
    keeps the default, on). Every `interval` seconds each table (`tables`, or every table of
    the database) past autovacuum's default
    thresholds is vacuumed (dead rows above 50 + 20 % of its rows) or analysed (rows changed
    above 50 + 10 %). Without it, every UPDATE of a Thing keeps its old version, the indexes
    whose keys many Things share fill with dead entries, and a run slows with every row it
    writes, which no deployment would see."""
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        running = conn.scalar(text("SHOW autovacuum")) == "on"
    if running:
        admin.dispose()
        yield
        return
    stop = threading.Event()
    counts = text("SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze "
                  "FROM pg_stat_user_tables")

    def work() -> None:
        with admin.connect() as conn:
            while not stop.wait(interval):
                for table, live, dead, changed in conn.execute(counts).all():
                    if tables is not None and table not in tables:
                        continue
                    if dead > 50 + 0.2 * live:
                        conn.execute(text(f'VACUUM (ANALYZE) "{table}"'))
                    elif changed > 50 + 0.1 * live:
                        conn.execute(text(f'ANALYZE "{table}"'))

    thread = threading.Thread(target=work, name="autovacuum-stand-in", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def describe_machine(postgres_url: str) -> dict:
    def run(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False,
                                  cwd=ROOT).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "")
    except OSError:
        pass
    pg_version = ""
    try:
        engine = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
        with engine.connect() as conn:
            pg_version = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
    except Exception as exc:  # the report still says what was measured
        pg_version = f"unreachable: {exc.__class__.__name__}"
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "postgresql": pg_version, "commit": run("git", "rev-parse", "--short", "HEAD"),
            "dirty": bool(run("git", "status", "--porcelain"))}


def _format(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text_value = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text_value} {unit}".strip()


def print_measurement(m: Measurement) -> None:
    ratio = "-" if m.ratio is None else f"{m.ratio:.2f}x"
    targets = []
    if m.target_ratio is not None:
        targets.append(f">= {m.target_ratio:.1f}x")
    if m.target_max is not None:
        targets.append(f"<= {_format(m.target_max, m.unit)}")
    verdict = {True: "ok", False: "MISSED", None: ""}[m.met]
    print(f"  {m.benchmark:<34} {m.engine:<10} {_format(m.figure, m.unit):>18}  "
          f"baseline {_format(m.baseline, m.unit):>18} ({m.baseline_name})  ratio {ratio:>6}  "
          f"target {' and '.join(targets) or '-':<22} {verdict}", flush=True)


def write_results(measurements: list[Measurement], machine: dict, scale: float,
                  started: datetime, failures: dict[str, str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}.json"
    document = {"started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
                "scale": scale, "machine": machine,
                "measurements": [m.as_json() for m in measurements], "failures": failures}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
