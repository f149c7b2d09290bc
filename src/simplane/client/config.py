"""Saved profiles: `simplane-cli login` writes them, `Client.from_profile()` reads them.

One JSON file, `credentials.json`, in $SIMPLANE_CONFIG_DIR or ~/.config/simplane (respecting
$XDG_CONFIG_HOME), readable by its owner only (0600, directory 0700):
`{"profiles": {"default": {"base_url": ..., "client_id": ..., "client_secret": ...}}}`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import SimplaneError

DEFAULT_PROFILE = "default"


class ProfileNotFoundError(SimplaneError):
    """No saved credentials for this profile (run `simplane-cli login`)."""


@dataclass(frozen=True)
class Profile:
    base_url: str
    client_id: str
    client_secret: str


def config_dir() -> Path:
    if os.environ.get("SIMPLANE_CONFIG_DIR"):
        return Path(os.environ["SIMPLANE_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "simplane"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def profile_name(profile: str | None) -> str:
    return profile or os.environ.get("SIMPLANE_PROFILE") or DEFAULT_PROFILE


def _read() -> dict:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"profiles": {}}
    except ValueError as exc:
        raise SimplaneError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise SimplaneError(f"{path} has no 'profiles' object")
    return data


def load_profile(profile: str | None = None) -> Profile:
    name = profile_name(profile)
    saved = _read()["profiles"].get(name)
    if not saved:
        raise ProfileNotFoundError(
            f"no credentials for profile {name!r} in {credentials_path()}; "
            f"run `simplane-cli login --profile {name}`")
    try:
        return Profile(str(saved["base_url"]), str(saved["client_id"]),
                       str(saved["client_secret"]))
    except KeyError as exc:
        raise SimplaneError(f"profile {name!r} in {credentials_path()} lacks {exc}") from None


def list_profiles() -> dict[str, Profile]:
    out = {}
    for name, saved in _read()["profiles"].items():
        try:
            out[name] = Profile(saved["base_url"], saved["client_id"], saved["client_secret"])
        except (KeyError, TypeError):
            continue
    return out


def _write(data: dict, path: Path | None = None) -> Path:
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    # Created 0600 from the start: the secret is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def save_profile(profile: str | None, saved: Profile) -> Path:
    data = _read()
    data["profiles"][profile_name(profile)] = asdict(saved)
    return _write(data)


def delete_profile(profile: str | None) -> bool:
    data = _read()
    existed = data["profiles"].pop(profile_name(profile), None) is not None
    if existed:
        _write(data)
    return existed


class TokenFile:
    """A `token_store` in the config directory (tokens.json, 0600), so consecutive command
    line runs reuse one access token instead of asking the token endpoint (rate limited per
    client id) every time."""

    def __init__(self, base_url: str, client_id: str, path: Path | None = None) -> None:
        self.path = path or config_dir() / "tokens.json"
        self.key = f"{base_url.rstrip('/')} {client_id}"

    def _all(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self) -> tuple[str, float] | None:
        kept = self._all().get(self.key)
        try:
            return str(kept["access_token"]), float(kept["expires_at"])
        except (TypeError, KeyError, ValueError):
            return None

    def save(self, token: str, expires_at: float) -> None:
        import time

        data = {k: v for k, v in self._all().items()
                if isinstance(v, dict) and float(v.get("expires_at", 0)) > time.time()}
        data[self.key] = {"access_token": token, "expires_at": expires_at}
        try:
            _write(data, self.path)
        except OSError:
            pass  # a cache: failing to keep the token only costs a token request next time

    def clear(self, token: str | None = None) -> None:
        """Forget the kept token (only if it is `token`, when given)."""
        data = self._all()
        kept = data.get(self.key)
        if kept is not None and (token is None or kept.get("access_token") == token):
            del data[self.key]
            try:
                _write(data, self.path)
            except OSError:
                pass
