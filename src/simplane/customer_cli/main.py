"""`simplane-cli`: the customer command line, on the `simplane.client` library.

Every failure is one line on stderr (a JSON object when `--json`/`--jsonl` was given) and an
exit code from `common` (0 ok, 1 refused, 2 usage, 3 auth, 4 not found, 5 unavailable).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from ..client import Client
from ..client.config import (
    Profile,
    TokenFile,
    credentials_path,
    delete_profile,
    list_profiles,
    profile_name,
    save_profile,
)
from . import fleet, operations, things
from .common import (
    EXIT_USAGE,
    JsonlOpt,
    JsonOpt,
    State,
    client,
    failure,
    one_line,
    output,
    state,
)


class OneLineGroup(TyperGroup):
    """Runs the command without Click's standalone error printing: every failure, usage
    errors included, becomes one line and a documented exit code."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
        except Exit as exc:
            result = exc.exit_code
        except KeyboardInterrupt:
            result = 130
        except Abort:
            sys.stderr.write("error: aborted\n")
            result = 130
        except TyperException as exc:  # usage errors of the (vendored) Click parser
            if getattr(exc, "exit_code", None) == 0:  # --help and the like
                result = 0
            else:
                _report(exc.format_message() + _see_help(exc), EXIT_USAGE, {}, argv)
                result = EXIT_USAGE
        except Exception as exc:
            if os.environ.get("SIMPLANE_CLI_TRACEBACK") == "1":
                raise
            message, code, details = failure(exc)
            _report(message, code, details, argv)
            result = code
        code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _see_help(exc: BaseException) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see `{ctx.command_path} --help`)" if ctx is not None else ""


def _report(message: str, code: int, details: dict[str, Any], argv: list[str]) -> None:
    message = one_line(message)
    if "--json" in argv or "--jsonl" in argv:
        line = json.dumps({"error": message, "exit_code": code, **details})
    else:
        line = f"error: {message}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


app = typer.Typer(
    cls=OneLineGroup,
    name="simplane-cli",
    help="simplane customer command line: Things, groups, networks, firewall, SMS, bulk "
         "actions, billing and events. Exit codes: 0 ok, 1 refused by the API (e.g. 412), "
         "2 usage error, 3 authentication/permission, 4 not found, 5 server or network error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(
        "--profile", "-p", envvar="SIMPLANE_PROFILE",
        help="Saved credentials to use (default: 'default').")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", envvar="SIMPLANE_URL", help="API base URL; overrides the profile's.")] = None,
    max_retries: Annotated[int, typer.Option(
        "--max-retries", envvar="SIMPLANE_MAX_RETRIES", min=0, max=10,
        help="Retries of 429/503 answers and failed connections.")] = 3,
) -> None:
    ctx.obj = State(profile=profile, url=url, max_retries=max_retries)
    ctx.call_on_close(ctx.obj.close)


@app.command()
def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        "--url", help="API base URL, e.g. https://simplane.example.com.")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", envvar="SIMPLANE_CLIENT_ID",
                                                  help="API credential id.")] = None,
    client_secret: Annotated[str | None, typer.Option(
        "--client-secret", envvar="SIMPLANE_CLIENT_SECRET",
        help="API credential secret (prompted, hidden, when not given).")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Check the credential against the API first.")] = True,
    json_output: JsonOpt = False,
) -> None:
    """Save a credential under a profile (credentials.json, readable by you only)."""
    st = state(ctx)
    url = url or st.url or typer.prompt("API URL")
    client_id = client_id or typer.prompt("Client id")
    client_secret = client_secret or typer.prompt("Client secret", hide_input=True)
    saved = Profile(url.rstrip("/"), client_id, client_secret)
    who: dict[str, Any] = {}
    if verify:
        with Client(saved.base_url, saved.client_id, saved.client_secret,
                    max_retries=st.max_retries) as api:
            me = api.me()
        who = {"email": me.user.email, "role": me.role, "account_id": me.account.get("id")}
    path = save_profile(st.profile, saved)
    result = {"profile": profile_name(st.profile), "url": saved.base_url,
              "client_id": saved.client_id, "path": str(path), **who}
    if json_output:
        output(True, False).detail(result)
    else:
        as_who = f" as {who['email']} ({who['role']})" if who else ""
        output(False, False).note(
            f"logged in to {saved.base_url}{as_who}; profile {result['profile']!r} saved in {path}")


@app.command()
def logout(ctx: typer.Context) -> None:
    """Forget the profile's saved credential (and its kept access token)."""
    name = state(ctx).profile_name
    saved = list_profiles().get(name)
    if saved is not None:
        TokenFile(saved.base_url, saved.client_id).clear()
    if not delete_profile(state(ctx).profile):
        output(False, False).note(f"no profile {name!r} in {credentials_path()}")
        return
    output(False, False).note(f"profile {name!r} removed from {credentials_path()}")


@app.command()
def profiles(json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Saved profiles (secrets are not shown)."""
    rows = [{"profile": name, "url": p.base_url, "client_id": p.client_id}
            for name, p in sorted(list_profiles().items())]
    output(json_output, jsonl).items(rows, [("PROFILE", lambda r: r["profile"]),
                                            ("URL", lambda r: r["url"]),
                                            ("CLIENT ID", lambda r: r["client_id"])],
                                     empty="no profiles: run `simplane-cli login`")


@app.command()
def whoami(ctx: typer.Context, json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """The caller: user, role, account."""
    me = client(ctx).me()
    output(json_output, jsonl).detail(me, [
        ("email", lambda m: m.user.email), ("name", lambda m: m.user.name),
        ("role", lambda m: m.role), ("user", lambda m: m.user.id),
        ("client id", lambda m: m.client_id), ("account", lambda m: m.account.get("id")),
        ("account name", lambda m: m.account.get("name")), ("url", lambda m: client(ctx).base_url)])


@app.command()
def account(ctx: typer.Context, json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """The account: APN, IP quota, coverage, limits."""
    output(json_output, jsonl).detail(client(ctx).account.get())


app.add_typer(things.app, name="things")
fleet.register(app)
operations.register(app)


def main() -> None:  # the console script
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
