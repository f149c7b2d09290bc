"""Fixtures for the CLI tests: the command line in-process and as real processes."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import Process, cli_env
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from simplane.cli.main import app


@pytest.fixture
def cli(backend, tmp_path) -> Callable[..., Result]:  # type: ignore[no-untyped-def]
    """Run `simplane ARGS` in-process against the engine's test database."""
    env = cli_env(backend.settings.database_url, tmp_path)

    def run(*args: str, **extra_env: str) -> Result:
        return CliRunner().invoke(app, list(args), env={**env, **extra_env})

    return run


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str], log: Path) -> Process:
        started.append(Process(args, env, log))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def empty_database_url(backend, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A database of the engine under test with no schema at all."""
    if backend.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    base = make_url(backend.settings.database_url)
    name = f"simplane_cli_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
