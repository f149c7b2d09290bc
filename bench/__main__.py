"""`python -m bench [names...] [--scale S]`: runs bench/bench_*.py (all, or those named) and
writes one JSON report under bench/results/. See bench/_harness.py."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench._harness import (
    DEFAULT_POSTGRES_URL,
    Context,
    Measurement,
    describe_machine,
    print_measurement,
    write_results,
)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).parent
    available = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(here)])
                       if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available)})")
    parser.add_argument("--scale", type=float,
                        default=float(os.environ.get("SIMPLANE_BENCH_SCALE", "1")),
                        help="multiplies every data size (1 = the sizes of the issue)")
    parser.add_argument("--postgres-url",
                        default=os.environ.get("SIMPLANE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    names = args.names or available

    started = datetime.now(UTC)
    machine = describe_machine(args.postgres_url)
    print(f"simplane benchmarks, scale {args.scale:g}, {machine['cpus']} CPUs ({machine['cpu']}), "
          f"PostgreSQL {machine['postgresql']}, commit {machine['commit']}", flush=True)
    measurements: list[Measurement] = []
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="simplane-bench-") as work:
        context = Context(scale=args.scale, postgres_url=args.postgres_url, work_dir=Path(work))
        for name in names:
            print(f"\n{name}", flush=True)
            clock = time.perf_counter()
            try:
                module = importlib.import_module(f"bench.bench_{name}")
                for measurement in module.run(context):
                    print_measurement(measurement)
                    measurements.append(measurement)
            except Exception:
                failures[name] = traceback.format_exc()
                print(f"  FAILED:\n{failures[name]}", flush=True)
            print(f"  ({time.perf_counter() - clock:.0f} s)", flush=True)
    path = write_results(measurements, machine, args.scale, started, failures)
    missed = [m for m in measurements if m.met is False]
    print(f"\nresults: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    print(f"{len(measurements)} figures, {len(missed)} below target, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
