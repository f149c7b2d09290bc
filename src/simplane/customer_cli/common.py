"""What every command shares: global options, the client, output options, exit codes.

Exit codes (stable; scripts may rely on them):

| code | meaning |
|---|---|
| 0 | success |
| 1 | the API refused the request (400 validation, 405, 412 precondition such as an invalid state transition, ...), or a bulk action finished with failed Things |
| 2 | usage error: unknown command or option, bad option value |
| 3 | authentication or permission: not logged in, bad credentials (401), role not allowed (403) |
| 4 | not found (404) |
| 5 | unavailable: network error, 5xx, still rate limited (429) after the retries, wait timeout |
| 130 | interrupted, or a confirmation declined |
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from ..client import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    Client,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryInfo,
    ServerError,
    SimplaneError,
    WaitTimeoutError,
)
from ..client.config import ProfileNotFoundError, TokenFile, load_profile, profile_name
from .output import Output

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_UNAVAILABLE = 5


class CliError(SimplaneError):
    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def failure(exc: BaseException) -> tuple[str, int, dict[str, Any]]:
    """The one line, the exit code and the JSON details for an error."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code, {}
    if isinstance(exc, APIError):
        details: dict[str, Any] = {"status": exc.status, "code": exc.code}
        message = f"{exc.status} {exc.code}: {exc.detail}"
        if exc.errors:
            details["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        if isinstance(exc, ServerError) and exc.request_id:
            message += f" (request id {exc.request_id})"
            details["request_id"] = exc.request_id
        if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
            code = EXIT_AUTH
        elif isinstance(exc, NotFoundError):
            code = EXIT_NOT_FOUND
        elif isinstance(exc, (ServerError, RateLimitedError)):
            code = EXIT_UNAVAILABLE
        else:
            code = EXIT_REFUSED
        return message, code, details
    if isinstance(exc, ProfileNotFoundError):
        return str(exc), EXIT_AUTH, {}
    if isinstance(exc, (APIConnectionError, WaitTimeoutError)):
        return str(exc), EXIT_UNAVAILABLE, {}
    if isinstance(exc, SimplaneError):
        return str(exc), EXIT_USAGE, {}
    return f"unexpected {type(exc).__name__}: {exc}", EXIT_REFUSED, {}


@dataclass
class State:
    profile: str | None = None
    url: str | None = None
    max_retries: int = 3
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        if self._client is None:
            client_id = os.environ.get("SIMPLANE_CLIENT_ID")
            secret = os.environ.get("SIMPLANE_CLIENT_SECRET")
            if client_id and secret:
                url = self.url or os.environ.get("SIMPLANE_URL")
                if not url:
                    url = load_profile(self.profile).base_url
            else:
                saved = load_profile(self.profile)
                url, client_id, secret = self.url or saved.base_url, saved.client_id, \
                    saved.client_secret
            self._client = Client(url, client_id, secret, max_retries=self.max_retries,
                                  on_retry=_say_retry, token_store=TokenFile(url, client_id))
        return self._client

    @property
    def profile_name(self) -> str:
        return profile_name(self.profile)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _say_retry(info: RetryInfo) -> None:
    why = "rate limited" if info.status == 429 else (
        "service unavailable" if info.status == 503 else "connection failed")
    sys.stderr.write(f"{why} ({info.reason}); retrying in {info.wait:g} s "
                     f"(attempt {info.attempt})\n")
    sys.stderr.flush()


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def client(ctx: typer.Context) -> Client:
    return state(ctx).client()


# Options shared by commands.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (an array for lists).")]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON object per line.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Follow next_cursor through every page.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, max=1000,
                                              help="Page size (server default 100).")]
CursorOpt = Annotated[str | None, typer.Option("--cursor", help="Start at this page cursor.")]


def output(json_output: bool, jsonl: bool) -> Output:
    if json_output and jsonl:
        raise typer.BadParameter("--json and --jsonl exclude each other")
    return Output(json_output, jsonl)


def emit_list(out: Output, pager: Any, columns: Any, every: bool, **kwargs: Any) -> None:
    """One page (saying how to get the next) or, with --all, every page."""
    if every:
        out.items(iter(pager), columns, **kwargs)
        return
    page = pager.first_page()
    out.items(page.items, columns, **kwargs)
    if page.next_cursor:
        out.note(f"more results: --cursor {page.next_cursor} (or --all)")
