"""The site profile: one vantage point at one site, and what must be true there.

Loading validates everything before any probe runs, and reports every problem with its file, line
and key path, so a user fixes a profile in one pass instead of one traceback at a time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..locate import profiles_dir
from .base import IfName, Seconds
from .dhcpv6 import Dhcpv6Area
from .dns import DnsArea
from .errors import Problem, ProfileError
from .firewall import FirewallArea
from .model import Issue, Strict, ValidationError, invariant, short
from .nd import NdArea
from .ntp import NtpArea
from .routes import RoutesArea
from .sysctl import SysctlArea
from .tunnel import TunnelArea
from .vpn import VpnArea

AREAS: tuple[str, ...] = (
    "sysctl",
    "nd",
    "routes",
    "dns",
    "ntp",
    "firewall",
    "tunnel",
    "vpn",
    "dhcpv6",
)
#: Profiles larger than this are refused: a profile is a handful of expectations, not a data dump.
MAX_PROFILE_BYTES = 1 << 20


class Node(Strict):
    """Where the checks run: a router, a host on a LAN, or a vantage outside the site."""

    role: Literal["router", "host", "outside"]
    hostname: str | None = None


class Interface(Strict):
    """An interface of this node by role; `upstream_ra` marks one whose RAs give the default route."""

    role: Literal["wan", "lan", "tunnel", "vpn", "other"]
    upstream_ra: bool = False


class Timeouts(Strict):
    """Deadlines. `probe` bounds each probe, `ra_listen` the RA window, `run` the whole run."""

    probe: Seconds = 2.0
    ra_listen: Seconds = 3.5
    run: Seconds = 60.0


class Profile(Strict):
    """A whole profile. Areas left out select none of their checks."""

    version: Literal[1] = 1
    description: str = ""
    node: Node
    interfaces: dict[IfName, Interface] = {}
    timeouts: Timeouts = Timeouts()
    sysctl: SysctlArea | None = None
    nd: NdArea | None = None
    routes: RoutesArea | None = None
    dns: DnsArea | None = None
    ntp: NtpArea | None = None
    firewall: FirewallArea | None = None
    tunnel: TunnelArea | None = None
    vpn: VpnArea | None = None
    dhcpv6: Dhcpv6Area | None = None

    @invariant
    def _interfaces_declared(self) -> None:
        problems = []
        for area in self.areas():
            for key, name in getattr(self, area).interface_refs().items():
                if name not in self.interfaces:
                    problems.append(
                        f"{area}.{key} names interface {name!r}, not declared under "
                        "'interfaces:' (declare it there with its role)"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        upstream = [n for n, i in self.interfaces.items() if i.upstream_ra]
        if upstream and self.node.role == "outside":
            raise ValueError("upstream_ra is for routers and hosts, not an outside vantage")
        if not self.areas():
            raise ValueError(f"the profile selects no area: add at least one of {', '.join(AREAS)}")

    def areas(self) -> list[str]:
        """The areas this profile selects, in the canonical order."""
        return [a for a in AREAS if getattr(self, a) is not None]

    def interfaces_with_role(self, role: str) -> list[str]:
        return [name for name, i in self.interfaces.items() if i.role == role]


@dataclass(frozen=True)
class LoadedProfile:
    """A validated profile together with where it came from, for reports and baselines."""

    name: str
    path: Path
    sha256: str
    profile: Profile


# ---------------------------------------------------------------------------------------------
# locating profiles


def profile_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Where bare profile names are looked up: given dirs, $SIXCHECK_PROFILES, the shipped ones."""
    dirs = list(extra or [])
    env = os.environ.get("SIXCHECK_PROFILES")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(profiles_dir())  # the checkout's profiles/, or the installed package's
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def resolve(name_or_path: str, dirs: list[Path] | None = None) -> Path:
    """Turn `home-gw` into `profiles/home-gw.yaml`; a path (with / or .yaml) is used as given."""
    looks_like_path = os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if looks_like_path:
        return Path(name_or_path)
    for d in profile_dirs(dirs):
        for ext in (".yaml", ".yml"):
            candidate = d / f"{name_or_path}{ext}"
            try:
                if candidate.is_file():
                    return candidate
            except OSError:  # a name too long for the file system, an unreadable folder
                continue
    searched = ", ".join(str(d) for d in profile_dirs(dirs))
    raise ProfileError(
        [
            Problem(
                name_or_path, None, "", f"no profile named {name_or_path!r} (looked in {searched})"
            )
        ]
    )


def list_profiles(dirs: list[Path] | None = None) -> list[tuple[str, Path, str]]:
    """Every profile found: (name, path, one-line description or the problem loading it)."""
    found: dict[str, tuple[str, Path, str]] = {}
    for d in profile_dirs(dirs):
        if not d.is_dir():
            continue
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            if path.stem in found:
                continue
            try:
                desc = load(path).profile.description.strip().splitlines()
                line = desc[0] if desc else "(no description)"
            except ProfileError as exc:
                line = f"(invalid: {exc.problems[0].message})"
            found[path.stem] = (path.stem, path, line)
    return list(found.values())


# ---------------------------------------------------------------------------------------------
# loading


#: libyaml when present: ~50x faster than the pure-Python parser on a large file.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Bounds that keep a broken or hostile file from crashing or hanging the loader (libyaml's composer
#: overflows the C stack on deep nesting; aliases can expand a small file a billionfold). A profile
#: nests a handful of levels and lists tens of entries.
MAX_DEPTH = 32
MAX_ENTRIES = 4096  # per list or mapping (the firewall audit caps its own sweep at 4096 probes)
MAX_NODES = 100_000  # values after expanding aliases
MAX_NUMBER_CHARS = 64
MAX_PROBLEMS = 50
_STR_TAG = "tag:yaml.org,2002:str"
_KINDS = {"int": "a number", "float": "a number", "bool": "true/false", "null": "null"}
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _screen(text: str, file: str) -> None:
    """Check nesting depth, alias loops and alias expansion on the event stream.

    The event stream is produced without recursion, so this runs safely before anything builds a
    tree: a file nested 100 000 levels deep, an alias inside its own anchor, or a "billion laughs"
    chain of aliases becomes a ProfileError instead of a crash, a RecursionError or a hang.
    """
    stack: list[list[Any]] = []  # per open collection: [values inside so far, its anchor]
    sizes: dict[str, int] = {}
    for ev in yaml.parse(text, Loader=_Loader):
        line = ev.start_mark.line + 1 if ev.start_mark else None
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise ProfileError(
                    [Problem(file, line, "", f"nested more than {MAX_DEPTH} levels deep")]
                )
            stack.append([0, ev.anchor])
            continue
        if isinstance(ev, yaml.CollectionEndEvent):
            inside, anchor = stack.pop()
            size = inside + 1
            if anchor:
                sizes[anchor] = size
        elif isinstance(ev, yaml.ScalarEvent):
            size = 1
            if ev.anchor:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            if any(anchor == ev.anchor for _, anchor in stack):
                raise ProfileError(
                    [
                        Problem(
                            file,
                            line,
                            "",
                            f"alias *{ev.anchor} refers to a value containing itself",
                        )
                    ]
                )
            # an undefined (or missing) alias is reported by the composer
            size = sizes.get(ev.anchor, 1) if ev.anchor is not None else 1
        else:
            continue
        if stack:
            stack[-1][0] += size
            if stack[-1][0] > MAX_NODES:
                raise ProfileError(
                    [
                        Problem(
                            file,
                            line,
                            "",
                            f"more than {MAX_NODES} values once aliases are expanded",
                        )
                    ]
                )


def _walk(
    node: yaml.Node,
    path: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    problems: list[Problem],
    file: str,
) -> None:
    """Record the line of every key path; report duplicate keys, huge collections, odd keys."""
    line = node.start_mark.line + 1
    lines.setdefault(path, line)
    where = ".".join(path)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and len(node.value) > MAX_ENTRIES:
        problems.append(
            Problem(file, line, where, f"{len(node.value)} entries; at most {MAX_ENTRIES} allowed")
        )
        return
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            kline = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(
                    Problem(file, kline, where, "a key must be a name, not a list or mapping")
                )
                continue
            key = key_node.value
            sub = (*path, key)
            if key_node.tag not in (_STR_TAG, "tag:yaml.org,2002:merge"):
                kind = _KINDS.get(key_node.tag.rsplit(":", 1)[-1], "value")
                problems.append(
                    Problem(
                        file,
                        kline,
                        ".".join(sub),
                        f"key {key!r} reads as {kind}; keys are names (quote it)",
                    )
                )
            if key in seen:
                problems.append(
                    Problem(file, kline, ".".join(sub), "duplicate key (the later one would win)")
                )
            seen.add(key)
            lines[sub] = kline
            _walk(value_node, sub, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        first: dict[Any, int] = {}
        for i, item in enumerate(node.value):
            fp = _fingerprint(item)
            if fp in first:
                problems.append(
                    Problem(
                        file,
                        item.start_mark.line + 1,
                        ".".join((*path, str(i))),
                        f"repeats entry {first[fp]} (listed twice)",
                    )
                )
            first.setdefault(fp, i)
            _walk(item, (*path, str(i)), lines, problems, file)
    elif node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
        problems.append(
            Problem(file, line, where, f"a number of {len(node.value)} digits is out of range")
        )
    elif any(0xD800 <= ord(c) <= 0xDFFF for c in node.value):
        problems.append(
            Problem(file, line, where, "contains an invalid Unicode escape (a lone surrogate)")
        )


def _fingerprint(node: yaml.Node) -> Any:
    """A hashable picture of a node, to spot an entry listed twice in a list."""
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value)
    if isinstance(node, yaml.SequenceNode):
        return ("seq", tuple(_fingerprint(n) for n in node.value))
    return ("map", frozenset((_fingerprint(k), _fingerprint(v)) for k, v in node.value))


def _capped(problems: list[Problem]) -> list[Problem]:
    """At most MAX_PROBLEMS lines: a wholly wrong file should not print thousands of them."""
    problems = _dedupe(problems)
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        Problem(problems[0].file, None, "", f"... and {more} more problems"),
    ]


def _read_yaml(text: str, file: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """YAML text to plain data plus the line of every key path; every failure is a ProfileError."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        _screen(text, file)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                raise ProfileError(
                    [Problem(file, None, "", "the profile is empty; see profiles/README.md")]
                )
            problems: list[Problem] = []
            _walk(root, (), lines, problems, file)
            if problems:
                raise ProfileError(_capped(problems))
            return loader.construct_document(root), lines
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        detail = " ".join(s for s in (exc.context, exc.problem) if s)
        if isinstance(exc, yaml.constructor.ConstructorError):
            if "tag" in (exc.problem or ""):
                detail = f"{detail} (profiles use plain YAML: no tags)"
            raise ProfileError([Problem(file, line, "", f"YAML error: {detail}")]) from None
        raise ProfileError([Problem(file, line, "", f"YAML syntax error: {detail}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ProfileError(
            [Problem(file, line, "", f"YAML error: control character U+{code:04X} is not allowed")]
        ) from None
    except yaml.YAMLError as exc:
        raise ProfileError([Problem(file, None, "", f"YAML error: {exc}")]) from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
        msg = short(str(exc), 200)
        raise ProfileError([Problem(file, None, "", f"cannot read a value: {msg}")]) from None


def _line_for(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def parse(text: str, file: str) -> Profile:
    """Validate profile text; raises ProfileError listing every problem."""
    data, lines = _read_yaml(text, file)
    if not isinstance(data, dict):
        raise ProfileError(
            [Problem(file, 1, "", f"a profile is a mapping of keys, got {type(data).__name__}")]
        )
    empty = [a for a in AREAS if a in data and data[a] is None]
    if empty:  # `dns:` with nothing under it would silently deselect the whole area
        raise ProfileError(
            [
                Problem(file, lines.get((a,)), a, "empty section: list what to check, or remove it")
                for a in empty
            ]
        )
    bad_keys = [k for k in _all_keys(data) if not isinstance(k, str)]
    if bad_keys:
        raise ProfileError([Problem(file, None, "", f"key {short(bad_keys[0])} is not a string")])
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(validation_problems(exc.issues, lines, file)) from None


def validation_problems(
    issues: list[Issue], lines: dict[tuple[str, ...], int], file: str
) -> list[Problem]:
    """Schema issues as problems with the line of their key path (shared with site files)."""
    problems = []
    for issue in issues:
        loc = tuple(str(part) for part in issue.loc)
        text = issue.message if len(issue.message) <= 300 else short(issue.message, 300)[1:-1]
        problems.append(Problem(file, _line_for(loc, lines), ".".join(loc), text))
    return _capped(problems)


def _all_keys(data: Any) -> Iterator[Any]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield k
            yield from _all_keys(v)
    elif isinstance(data, list):
        for v in data:
            yield from _all_keys(v)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    out: list[Problem] = []
    for p in problems:
        if p not in out:
            out.append(p)
    return out


def load(name_or_path: str | Path, dirs: list[Path] | None = None) -> LoadedProfile:
    """Find, read and validate a profile; every failure is a ProfileError, never a traceback."""
    path = resolve(str(name_or_path), dirs) if isinstance(name_or_path, str) else name_or_path
    raw, text = read_bounded(path)
    profile = parse(text, str(path))
    return LoadedProfile(path.stem, path, hashlib.sha256(raw).hexdigest(), profile)


def read_bounded(path: Path) -> tuple[bytes, str]:
    """The bytes and UTF-8 text of a small YAML file (a profile or a site file); every failure
    is a ProfileError naming the file, never an OSError or a hang on a FIFO."""
    file = str(path)
    try:
        if path.is_dir():
            raise ProfileError([Problem(file, None, "", "is a directory, not a profile file")])
        if path.exists() and not path.is_file():  # a FIFO blocks, /dev/zero never ends
            raise ProfileError([Problem(file, None, "", "is not a regular file")])
        with path.open("rb") as fh:
            raw = fh.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        raise ProfileError([Problem(file, None, "", "no such file")]) from None
    except OSError as exc:
        raise ProfileError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError([Problem(file, None, "", f"larger than {MAX_PROFILE_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            [Problem(file, None, "", f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]
        ) from None
    return raw, text
