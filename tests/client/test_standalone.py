"""The library must work where only httpx and pydantic are installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = textwrap.dedent("""
    import importlib.abc, sys

    SERVER_ONLY = {"fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn",
                   "argon2", "cryptography", "prometheus_client", "redis", "pyrad", "typer",
                   "rich", "multipart", "pydantic_settings"}

    class Forbid(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            inside = name.startswith("simplane.") and not name.startswith("simplane.client")
            if top in SERVER_ONLY or inside:
                raise ImportError(f"{name} is not installed here")
            return None

    sys.meta_path.insert(0, Forbid())
    from simplane.client import Client, AsyncClient, Thing, verify_webhook_signature
    Client("http://127.0.0.1:9", "id", "secret").close()
    print("ok", sorted(m for m in sys.modules if m.startswith("simplane")))
""")


def test_importable_without_the_server_dependencies():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env={"PYTHONPATH": str(SRC)}, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ") and "simplane.core" not in result.stdout
