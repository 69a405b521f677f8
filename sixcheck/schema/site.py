"""The site file: a site's vantages, each with its profile and how to reach the node it runs on.

Validated like a profile (strict, every problem with file, line and key path, nothing run until
the whole file is valid), because a typo in a vantage must not silently leave a node unchecked.
Reaching a node is the system's own business: ``ssh:`` goes through the OpenSSH client, so the
user's ssh config, keys, agent, jump hosts and known_hosts apply and no secret lives here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from .base import Port, Seconds
from .errors import Problem, ProfileError
from .model import Before, Field, Strict, ValidationError, invariant
from .profile import _read_yaml, read_bounded, resolve, validation_problems
from .profile import load as load_profile

#: A vantage name becomes a folder name in the site report and a word in its messages.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,63}$")
_DOC = "docs/site-file.md"


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a usable name (letters, digits, '_', '.', '-'; at most 63)"
        )
    return value


def _ssh_target(value: Any) -> str:
    """``[user@]host``: what ssh takes as its destination, and nothing it could read as an
    option or a password."""
    if not isinstance(value, str):
        raise ValueError(f"expected USER@HOST as a string, got {type(value).__name__} {value!r}")
    text = value.strip()
    user, _, host = text.rpartition("@")
    if ":" in user:
        raise ValueError(
            "looks like USER:PASSWORD@HOST; never put a password in the site file: ssh uses "
            "your keys, agent and ssh config"
        )
    if not host or host.startswith("-") or user.startswith("-"):
        raise ValueError(f"{text!r} is not USER@HOST (a host, optionally with a user)")
    if any(c.isspace() or c in "/\\'\"`$;&|<>" for c in text) or text.count("@") > 1:
        raise ValueError(f"{text!r} is not USER@HOST (no spaces, quotes or shell characters)")
    return text


def _command(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a command as a string, got {type(value).__name__} {value!r}")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a command line: {exc}") from None
    if not words:
        raise ValueError("an empty command")
    return value


def _option_name(value: Any) -> str:
    if not isinstance(value, str) or not _OPTION.match(value):
        raise ValueError(f"{value!r} is not an ssh option name (e.g. ConnectTimeout, ProxyJump)")
    return value


def _option_value(value: Any) -> str | int | bool:
    if isinstance(value, bool | int):
        return value
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\n\r\0"):
        raise ValueError(f"{value!r} is not an ssh option value (one line of text, or a number)")
    return value


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ValueError(f"expected a file path, got {value!r}")
    return value


Name = Annotated[str, Before(_name)]
SshTarget = Annotated[str, Before(_ssh_target)]
Command = Annotated[str, Before(_command)]
FilePath = Annotated[str, Before(_path)]
SshOptions = dict[
    Annotated[str, Before(_option_name)],
    Annotated[str | int | bool, Before(_option_value)],
]


class Defaults(Strict):
    """What every vantage gets unless it says otherwise."""

    deadline: Seconds = 300.0
    sixcheck: Command | None = None
    ssh_config: FilePath | None = None
    identity_file: FilePath | None = None
    port: Port | None = None
    ssh_options: SshOptions = {}


class Vantage(Strict):
    """One node of the site: the profile it runs and exactly one way to reach it."""

    profile: str = Field(min_length=1)
    local: Literal[True] | None = None
    netns: Name | None = None
    ssh: SshTarget | None = None
    deadline: Seconds | None = None
    sixcheck: Command | None = None
    ssh_config: FilePath | None = None
    identity_file: FilePath | None = None
    port: Port | None = None
    ssh_options: SshOptions | None = None

    @invariant
    def _one_way(self) -> None:
        ways = [w for w in ("local", "netns", "ssh") if getattr(self, w) is not None]
        if len(ways) != 1:
            found = f" (found {', '.join(ways)})" if ways else ""
            raise ValueError(
                "say how to reach it with exactly one of `local: true`, `netns: NAME` or "
                f"`ssh: USER@HOST`{found}"
            )
        if self.ssh is None:
            ssh_only = [
                k
                for k in ("ssh_config", "identity_file", "port", "ssh_options")
                if getattr(self, k) is not None
            ]
            if ssh_only:
                raise ValueError(f"{', '.join(ssh_only)}: only for a vantage reached with ssh")

    @property
    def reach(self) -> Literal["local", "netns", "ssh"]:
        return "ssh" if self.ssh else "netns" if self.netns else "local"


class Site(Strict):
    """A whole site file."""

    version: Literal[1] = 1
    site: Name
    description: str = ""
    defaults: Defaults = Defaults()
    vantages: dict[Name, Vantage] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedSite:
    """A validated site file and where it is, so relative paths in it resolve beside it."""

    path: Path
    site: Site

    def local_path(self, value: str) -> Path:
        """A path written in the site file, relative to the file's own folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.path.parent / p


def parse(text: str, file: str) -> Site:
    """Validate site-file text; raises ProfileError listing every problem."""
    return _parse(text, file)[0]


def _parse(text: str, file: str) -> tuple[Site, dict[tuple[str, ...], int]]:
    data, lines = _read_yaml(text, file)
    if not isinstance(data, dict):
        raise ProfileError(
            [Problem(file, 1, "", f"a site file is a mapping of keys, got {type(data).__name__}")]
        )
    if any(not isinstance(k, str) for k in data):
        raise ProfileError([Problem(file, None, "", "every key must be a string")])
    try:
        return Site.model_validate(data), lines
    except ValidationError as exc:
        problems = validation_problems(exc.issues, lines, file)
        raise ProfileError(
            [
                Problem(p.file, p.line, p.path, p.message.replace("profiles/README.md", _DOC))
                for p in problems
            ]
        ) from None


def load(path: Path) -> LoadedSite:
    """Read and validate a site file, then the profiles it names as local files, so a typo in
    any of them stops everything before a single node is contacted."""
    _, text = read_bounded(path)
    site, lines = _parse(text, str(path))
    loaded = LoadedSite(path, site)
    problems: list[Problem] = []
    for name, v in site.vantages.items():
        if v.reach == "ssh" and not looks_like_path(v.profile):
            continue  # a profile name is resolved where it runs (shipped or $SIXCHECK_PROFILES)
        try:
            target = loaded.local_path(v.profile) if looks_like_path(v.profile) else None
            load_profile(target if target is not None else resolve(v.profile))
        except ProfileError as exc:
            key = ("vantages", name, "profile")
            problems += [
                Problem(str(path), lines.get(key), ".".join(key), str(p)) for p in exc.problems
            ]
    if problems:
        raise ProfileError(problems)
    return loaded


def looks_like_path(profile: str) -> bool:
    """The rule `pytest --profile` uses too: a slash or a .yaml/.yml ending makes a path."""
    return "/" in profile or profile.endswith((".yaml", ".yml"))
