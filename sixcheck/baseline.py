"""Post-change validation: compare this run with an earlier run's JSON results.

"Did I break anything?" is answered per check: a regression (failing now, not before), fixed,
still failing, still passing, new, gone, or now skipped. Only what describes the network is
compared: each kind of observation declares its stable fields and thresholds (`Fields` in
`probes/base.py`, carried in the results JSON as `observation_fields`), so a source port, a
timestamp or a clock offset wobbling by microseconds never reads as a change. A regression arrives
with the lines that explain it (`rcode NOERROR → REFUSED`) under the request as a person names it
(`AAAA www.example.net @ 2001:db8::53 over UDP`); calm checks are counted, not listed.

Knows nothing of pytest: it reads two `sixcheck-results/1` documents (the baseline from a file, the
current run as `Results.as_json()` data) and the plugin decides what to do with the comparison.
"""

from __future__ import annotations

import html
import importlib
import json
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import diagnosis
from .diagnosis import LAYERS
from .probes.base import Threshold, fields_table
from .symptoms import AREA_LAYER

SCHEMA_PREFIX = "sixcheck-results/"
#: Schema versions this module can read as a baseline.
READABLE_VERSIONS = (1,)

# Categories, in the order a person wants to read them: what broke first.
REGRESSION = "regression"
NEW_FAILURE = "new-failure"
FIXED = "fixed"
GONE = "gone"
NOW_SKIPPED = "now-skipped"
STILL_FAILING = "still-failing"
NEW = "new"
STILL_PASSING = "still-passing"
ORDER = (REGRESSION, NEW_FAILURE, FIXED, GONE, NOW_SKIPPED, STILL_FAILING, NEW, STILL_PASSING)
#: Categories that make a run fail under `--fail-on regressions`: failures the baseline did not have.
UNKNOWN_FAILURES = (REGRESSION, NEW_FAILURE)

#: For observations whose kind no table knows (a results file of an unknown probe): fields that
#: differ on every run and say nothing about the site (timings, clocks, ports, ids) ...
VOLATILE = re.compile(
    r"(^|[._])(elapsed|rtt|rtt_ms|duration|took|latency|timestamp|time|at|sent_at|"
    r"received_at|started|finished|when|source_port|sport|port_used|xid|txid|id|t[1-4]|count|"
    r"attempts|counter|seq)$"
)
#: ... and measurements that wobble but can be the very cause of a failure (a clock offset, a
#: lifetime counting down): shown only for checks whose outcome changed.
NOISY = re.compile(r"(^|[._])(seconds|age|delay|offset|jitter|remaining|ttl|lifetime_left)$")
#: Notes a check records that are the profile's expectation (compared: a changed profile explains
#: a changed verdict); found values are in the observations already.
EXPECTATION = re.compile(r"^(expected?|wanted|claim|max_\w+|min_\w+)$")
#: At most this many changed lines are shown per check (the rest are counted).
MAX_FIELDS = 12


class BaselineError(Exception):
    """The baseline file cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class FieldChange:
    """One meaningful change: `field` of what `request` observed went from `before` to `after`."""

    request: str  # as a person names it: `AAAA www.example.net @ 2001:db8::53 over UDP`
    field: str  # `rcode`, `answers`, `adverts router`
    before: Any
    after: Any

    @property
    def path(self) -> str:
        return f"{self.request} > {self.field}"

    def set_diff(self) -> tuple[list[Any], list[Any]] | None:
        """(came, went) when both sides are sets that overlap; None when a plain before → after
        reads better."""
        b, a = self.before, self.after
        if isinstance(b, list) and isinstance(a, list) and set(map(str, b)) & set(map(str, a)):
            return [x for x in a if x not in b], [x for x in b if x not in a]
        return None

    def lines(self) -> list[str]:
        """`rcode NOERROR → REFUSED`; for sets, one line per element that came (`+`) or went (`-`):
        `adverts router + fe80::9`."""
        diff = self.set_diff()
        if diff is None:
            return [f"{self.field} {_words(self.before)} → {_words(self.after)}"]
        came, went = diff
        return [f"{self.field} + {_words(x)}" for x in came] + [
            f"{self.field} - {_words(x)}" for x in went
        ]

    def text(self) -> str:
        return "; ".join(self.lines())

    def as_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "field": self.field,
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "text": self.text(),
        }


@dataclass
class Change:
    """One check's fate between the two runs."""

    id: str
    area: str | None
    category: str
    before: str | None  # outcome in the baseline, None when the check is new
    after: str | None  # outcome now, None when it is gone
    message: str = ""  # the current message (or the baseline's, when gone)
    before_message: str = ""
    evidence: list[FieldChange] = field(default_factory=list)
    evidence_more: int = 0  # changed fields not listed

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    def by_request(self) -> dict[str, list[FieldChange]]:
        """The changed lines grouped under the request that observed them, in evidence order."""
        out: dict[str, list[FieldChange]] = {}
        for f in self.evidence:
            out.setdefault(f.request, []).append(f)
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "area": self.area,
            "category": self.category,
            "before": self.before,
            "after": self.after,
            "message": self.message,
            "before_message": self.before_message,
            "evidence": [f.as_json() for f in self.evidence],
            "evidence_more": self.evidence_more,
        }


@dataclass
class CauseGroup:
    """Regressions one cause of the current run accounts for (`diagnosis.diagnose`)."""

    key: str
    title: str
    area: str
    layer: str
    regressions: list[str]  # check ids
    known: bool  # the baseline had this cause too

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "area": self.area,
            "layer": self.layer,
            "regressions": self.regressions,
            "known": self.known,
        }


@dataclass
class Comparison:
    """Every check's change, sorted with regressions first, and the per-area counts."""

    baseline_path: str
    baseline_started: str | None
    baseline_profile: str | None
    profile: str | None
    changes: list[Change]
    #: {area: (outcome counts in the baseline, outcome counts now)}
    areas: dict[str, tuple[dict[str, int], dict[str, int]]] = field(default_factory=dict)
    causes: list[CauseGroup] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(ORDER, 0)
        for c in self.changes:
            out[c.category] += 1
        return out

    def of(self, *categories: str) -> list[Change]:
        return [c for c in self.changes if c.category in categories]

    def unknown_failures(self) -> list[Change]:
        """Failures the baseline did not have: regressions and failing new checks."""
        return self.of(*UNKNOWN_FAILURES)

    def calm(self) -> tuple[int, int]:
        """(still passing, still failing) checks without a meaningful change: counted, not listed."""
        return (
            sum(1 for c in self.of(STILL_PASSING) if not c.evidence),
            sum(1 for c in self.of(STILL_FAILING) if not c.evidence),
        )

    def passing_changes(self) -> list[tuple[str, list[FieldChange], list[str]]]:
        """Meaningful changes under checks that still pass, each request once with its checks
        (none a listed check already shows)."""
        shown = {
            (r, tuple(f.text() for f in lines))
            for ch in self.changes
            if ch.category != STILL_PASSING
            for r, lines in ch.by_request().items()
        }
        seen: dict[str, tuple[list[FieldChange], list[str]]] = {}
        for ch in self.of(STILL_PASSING):
            for request, lines in ch.by_request().items():
                if (request, tuple(f.text() for f in lines)) in shown:
                    continue
                entry = seen.setdefault(request, (lines, []))
                entry[1].append(ch.short_id)
        return [(r, lines, ids) for r, (lines, ids) in seen.items()]

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.baseline_path,
            "started": self.baseline_started,
            "profile": self.baseline_profile,
            "counts": self.counts(),
            "areas": {a: {"before": b, "after": n} for a, (b, n) in self.areas.items()},
            "causes": [g.as_json() for g in self.causes],
            "changes": [
                c.as_json() for c in self.changes if c.category != STILL_PASSING or c.evidence
            ],
        }


def short_id(check_id: str) -> str:
    """`checks/test_sysctl.py::test_sysctl[x]` -> `test_sysctl[x]`: what a person reads."""
    return check_id.split("::", 1)[-1]


# ---------------------------------------------------------------------------------------------
# loading


def load(path: Path) -> dict[str, Any]:
    """Read and sanity-check a results file; every problem is one BaselineError line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BaselineError(f"{path}: is a directory, not a JSON results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise BaselineError(
            f"{path}: not sixcheck JSON results (no 'schema: {SCHEMA_PREFIX}N'); "
            "use the .json file a run wrote"
        )
    version = schema.removeprefix(SCHEMA_PREFIX)
    if not version.isdigit() or int(version) not in READABLE_VERSIONS:
        raise BaselineError(
            f"{path}: results schema {schema} is not readable by this sixcheck "
            f"(reads {', '.join(SCHEMA_PREFIX + str(v) for v in READABLE_VERSIONS)})"
        )
    checks = data.get("checks")
    if not isinstance(checks, list) or not all(
        isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("outcome"), str)
        for c in checks
    ):
        raise BaselineError(f"{path}: 'checks' is not a list of {{id, outcome, ...}} entries")
    doc: dict[str, Any] = data
    return upgrade_legacy(doc)


# ---------------------------------------------------------------------------------------------
# records an older sixcheck wrote

#: Fields a RouteDecision's evidence has and no other observation's together: how one written
#: before its route type had a name of its own is known.
_DECISION_KEYS = frozenset({"dst", "family", "rules_consulted", "kernel"})
#: Comparison paths of the kinds that nest decisions, as older results declared them.
_LEGACY_PATHS = {
    "decisions.{dst,kind,interface,gateway,source}": (
        "decisions.{dst,route_type,interface,gateway,source}"
    ),
}


def _legacy_decision(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.keys() >= _DECISION_KEYS
        and "kind" in node
        and "route_type" not in node
    )


def _renamed(node: dict[str, Any]) -> dict[str, Any]:
    """A nested decision with its `kind` (the route type) as `route_type`, in its place."""
    return {("route_type" if k == "kind" else k): v for k, v in node.items()}


def _upgrade_nested(node: Any) -> Any:
    if isinstance(node, list):
        return [_upgrade_nested(v) for v in node]
    if isinstance(node, dict):
        node = _renamed(node) if _legacy_decision(node) else node
        return {k: _upgrade_nested(v) for k, v in node.items()}
    return node


def upgrade_observation(obs: Any) -> Any:
    """One observation as this sixcheck records it.

    Before the route type of a RouteDecision was `route_type` it was a field named `kind`, which
    overwrote the evidence's `kind` (the observation's class): a route decision read
    `{"kind": "unicast", "dst": ...}`, and the ones nested in NameRoutes and ResolverRoutes
    `decisions` `{"kind": "unicast", ...}`. Compared as they are, every route decision of an older
    baseline would change (`result unicast → RouteDecision`, a `route-type` appearing in each
    decision) although the network did not."""
    if not isinstance(obs, dict):
        return obs
    if _legacy_decision(obs):  # the class name was lost; the keys say which it was
        top: dict[str, Any] = {"kind": "RouteDecision"}
        for k, v in obs.items():
            if k != "kind":
                top[k] = v
            if k == "family":  # where the field sits in the class
                top["route_type"] = obs["kind"]
        obs = top
    return {k: _upgrade_nested(v) for k, v in obs.items()}


def upgrade_legacy(doc: dict[str, Any]) -> dict[str, Any]:
    """A results document with what older versions recorded differently read in today's shape
    (in place; returned for convenience): the observations (`upgrade_observation`) and the
    comparison paths that named their fields (`observation_fields`)."""
    for check in doc.get("checks") or ():
        evidence = check.get("evidence") if isinstance(check, dict) else None
        for entry in evidence if isinstance(evidence, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("observation"), dict):
                entry["observation"] = upgrade_observation(entry["observation"])
    table = doc.get("observation_fields")
    for spec in table.values() if isinstance(table, dict) else ():
        for key in ("stable", "volatile"):
            paths = spec.get(key) if isinstance(spec, dict) else None
            if isinstance(paths, list):
                spec[key] = [_LEGACY_PATHS.get(p, p) if isinstance(p, str) else p for p in paths]
    return doc


# ---------------------------------------------------------------------------------------------
# requests as a person names them


def _tcp_udp(proto: str) -> Callable[[Mapping[str, Any]], str]:
    def title(r: Mapping[str, Any]) -> str:
        dst = str(r["dst"])
        return f"{proto} [{dst}]:{r['port']}" if ":" in dst else f"{proto} {dst}:{r['port']}"

    return title


def _dns(r: Mapping[str, Any]) -> str:
    out = f"{r.get('rdtype', 'AAAA')} {r['name']} @ {r['server']} over {str(r.get('transport', 'udp')).upper()}"
    if r.get("port", 53) != 53:
        out += f" port {r['port']}"
    if r.get("recursion") is False:
        out += " (no recursion)"
    return out + (f" via {r['iface']}" if r.get("iface") else "")


def _route_get(r: Mapping[str, Any]) -> str:
    dst = r.get("dst", r.get("destination"))
    return f"route to {dst}" + (f" from {r['source']}" if r.get("source") else "")


_TABLES = {254: "main", 255: "local", 253: "default"}

#: probe kind -> its request as a person names it; an unknown kind reads `Kind value value`
TITLES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "DnsQuery": _dns,
    "ReadHostResolvers": lambda r: "the host's resolvers",
    "AddrInfo": lambda r: f"getaddrinfo {r['name']}",
    "RouteGet": _route_get,
    "NameEgress": lambda r: f"routes to {r['name']} (IPv{r.get('family', 6)})",
    "ResolverEgress": lambda r: "routes to the host's resolvers",
    "LinkFamilies": lambda r: f"link {r['interface']}",
    "CaptureEgress": lambda r: f"capture toward {r['target']} port {r['port']}",
    "Echo": lambda r: (
        f"ping {r['dst']}" + (f" ({r['size']} bytes)" if r.get("size", 64) != 64 else "")
    ),
    "PathMtu": lambda r: f"path MTU to {r['dst']}",
    "RouterAdverts": lambda r: f"RA on {r['interface']}",
    "RouterNeighbors": lambda r: f"routers on {r['interface']} (NS and echo)",
    "ReadAddresses": lambda r: f"addresses of {r['interface']}",
    "ReadRoutes": lambda r: f"routes in table {_TABLES.get(r.get('table', 254), r.get('table'))}",
    "ReadRules": lambda r: "policy rules",
    "ReadNeighbors": lambda r: f"neighbours on {r['interface']}",
    "NtpQuery": lambda r: (
        f"NTP {r['server']}" + (f" port {r['port']}" if r.get("port", 123) != 123 else "")
    ),
    "SysctlRead": lambda r: f"sysctl {r['key']}",
    "TcpConnect": _tcp_udp("TCP"),
    "UdpProbe": _tcp_udp("UDP"),
}


def request_title(req: Any) -> str:
    """`AAAA www.example.net @ 2001:db8::53 over UDP`, not the request object's repr."""
    if not isinstance(req, Mapping):
        return str(req)
    kind = str(req.get("probe", ""))
    title = TITLES.get(kind)
    if title is not None:
        try:
            return title(req)
        except (KeyError, TypeError, ValueError):
            pass
    skip = ("probe", "timeout", "tries", "rate", "concurrency")
    rest = " ".join(str(v) for k, v in req.items() if k not in skip and v not in (None, "", []))
    return f"{kind} {rest}".strip()


# ---------------------------------------------------------------------------------------------
# stable values of one observation


@cache
def _code_table() -> dict[str, dict[str, Any]]:
    """This sixcheck's own table, for results files written before they carried one."""
    from sixcheck import probes

    for mod in pkgutil.iter_modules(probes.__path__):
        importlib.import_module(f"{probes.__name__}.{mod.name}")
    return fields_table()


class Rules:
    """Which fields of which kind are compared: the newer document's table first, then the older
    one's, then this sixcheck's own; a kind none knows falls back to name patterns."""

    def __init__(self, *docs: Mapping[str, Any]) -> None:
        self.tables = [t for d in docs if isinstance(t := d.get("observation_fields"), Mapping)] + [
            _code_table()
        ]

    def of(self, kind: Any) -> tuple[tuple[str, ...], dict[str, Threshold]] | None:
        for table in self.tables:
            spec = table.get(str(kind))
            if isinstance(spec, Mapping) and isinstance(spec.get("stable"), list):
                th = spec.get("thresholds")
                return (
                    tuple(str(p) for p in spec["stable"]),
                    {str(k): Threshold.from_json(v) for k, v in (th or {}).items()}
                    if isinstance(th, Mapping)
                    else {},
                )
        return None


class _Absent:
    """A path the document does not have (an older sixcheck's observation): never compared."""


ABSENT = _Absent()


def _element(node: Any, keys: list[str]) -> str:
    """One list element as a short line: the first field bare, flags by name, others `k=v`."""
    if not isinstance(node, Mapping):
        return _words(node)
    parts = []
    for i, k in enumerate(keys):
        v = node.get(k)
        if v is None or v == [] or v is False:
            continue
        if i == 0:
            parts.append(_words(v))
        elif v is True:
            parts.append(k.replace("_", "-"))
        else:
            parts.append(f"{k.replace('_', '-')} {_words(v)}")
    return " ".join(parts)


def _gather(node: Any, parts: list[str], out: list[Any]) -> Any:
    """The value at a dotted path; through a list every element's value is added to `out` (a set
    of values: the answer set, the routers heard) and the return is `out`."""
    if isinstance(node, list) and parts:
        for el in node:
            _gather(el, parts, out)
        return out
    if not parts:
        return node
    head, rest = parts[0], parts[1:]
    if head.startswith("{") and head.endswith("}"):
        return _element(node, [k.strip() for k in head[1:-1].split(",")])
    if node is None:
        return None
    if not isinstance(node, Mapping):
        return ABSENT
    if head not in node:
        return ABSENT
    value = node[head]
    if isinstance(value, list) and rest:
        for el in value:
            v = _gather(el, rest, out)
            if v is not out and not isinstance(v, _Absent):
                out.extend(v if isinstance(v, list) else [v])
        return out
    return _gather(value, rest, out)


def stable_value(observation: Mapping[str, Any], path: str) -> Any:
    """The value of `path` in an observation; through lists a sorted set of the elements'."""
    out: list[Any] = []
    value = _gather(observation, path.split("."), out)
    if value is out:  # a set: an element without the field (None) adds nothing
        uniq = {json.dumps(v, sort_keys=True, default=str): v for v in out if v is not None}
        return [uniq[k] for k in sorted(uniq)]
    return value


def field_label(path: str) -> str:
    """`answers.value` -> `answers`, `adverts.prefixes.{prefix,on_link}` -> `adverts prefixes`."""
    parts = [p for p in path.split(".") if not p.startswith("{")]
    if len(parts) > 1 and parts[-1] == "value":
        parts = parts[:-1]
    return " ".join(parts)


def _differs(before: Any, after: Any, th: Threshold | None, limits: tuple[float, ...]) -> bool:
    if th is None:
        return bool(before != after)
    if isinstance(before, list) and isinstance(after, list):
        return _buckets(before, th, limits) != _buckets(after, th, limits)
    return th.changed(before, after, limits)


def _buckets(values: list[Any], th: Threshold, limits: tuple[float, ...]) -> set[Any]:
    out: set[Any] = set()
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool):
            m = abs(v) if th.magnitude else v
            out.add(tuple(m > lim for lim in (*th.limits, *limits)))
        else:
            out.add(json.dumps(v, default=str))
    return out


def _profile_limits(evidence: list[Any], th: Mapping[str, Threshold]) -> tuple[float, ...]:
    names = {t.profile_limit for t in th.values() if t.profile_limit}
    out: list[float] = []
    for entry in evidence:
        notes = entry.get("notes") if isinstance(entry, Mapping) else None
        if isinstance(notes, Mapping):
            for n in names:
                v = notes.get(n)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out.append(float(v))
    return tuple(out)


def _entries(evidence: Any) -> dict[str, Mapping[str, Any]]:
    """{request title: entry}, the second of two equal titles as `title #2`; notes under
    `the profile`."""
    out: dict[str, Mapping[str, Any]] = {}
    for entry in evidence if isinstance(evidence, list) else []:
        if not isinstance(entry, Mapping):
            continue
        label = request_title(entry["request"]) if "request" in entry else "the profile"
        n, key = 1, label
        while key in out:
            n += 1
            key = f"{label} #{n}"
        out[key] = entry
    return out


def _fallback(body: Any, noisy: bool) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _flatten(body, "", flat)
    return {
        k: v
        for k, v in flat.items()
        if k != "kind" and not VOLATILE.search(k) and (noisy or not NOISY.search(k))
    }


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value  # scalars and lists of scalars compare as a whole


def _entry_changes(
    label: str,
    b: Mapping[str, Any],
    a: Mapping[str, Any],
    rules: Rules,
    limits: tuple[float, ...],
    noisy: bool,
) -> list[FieldChange]:
    if "request" not in a:  # notes: only the profile's expectations
        bn, an = b.get("notes"), a.get("notes")
        bn, an = (bn if isinstance(bn, Mapping) else {}), (an if isinstance(an, Mapping) else {})
        return [
            FieldChange(label, k, bn.get(k), an.get(k))
            for k in [*bn, *(k for k in an if k not in bn)]
            if EXPECTATION.match(k) and k in bn and k in an and bn[k] != an[k]
        ]
    bo, ao = b.get("observation"), a.get("observation")
    bo, ao = (bo if isinstance(bo, Mapping) else {}), (ao if isinstance(ao, Mapping) else {})
    spec = rules.of(ao.get("kind") or bo.get("kind"))
    if bo.get("kind") != ao.get("kind"):  # e.g. an answer before, a probe failure now
        kinds = (bo.get("kind"), ao.get("kind"))
        changes = [FieldChange(label, "result", kinds[0], kinds[1])]
        if ao.get("error") != bo.get("error"):
            changes.append(FieldChange(label, "error", bo.get("error"), ao.get("error")))
        return changes
    out: list[FieldChange] = []
    if spec is None:
        fb, fa = _fallback(bo, noisy), _fallback(ao, noisy)
        for k in [*fb, *(k for k in fa if k not in fb)]:
            if k in fb and k in fa and fb[k] != fa[k]:
                out.append(FieldChange(label, k, fb[k], fa[k]))
        return out
    stable, thresholds = spec
    for path in stable:
        vb, va = stable_value(bo, path), stable_value(ao, path)
        if isinstance(vb, _Absent) or isinstance(va, _Absent):
            continue
        if _differs(vb, va, thresholds.get(path), limits if path in thresholds else ()):
            out.append(FieldChange(label, field_label(path), vb, va))
    return out


def _diff_entries(
    eb: Mapping[str, Mapping[str, Any]],
    ea: Mapping[str, Mapping[str, Any]],
    rules: Rules,
    after: Any,
    noisy: bool,
) -> tuple[list[FieldChange], int]:
    """The meaningful changes between two checks' evidence (entries by request title), at most
    MAX_FIELDS, and how many more.

    A request asked in one run only (a check that asks more once it fails, a random target) has
    nothing to compare with and adds no line. `noisy` (the outcome changed) adds what only explains
    a changed verdict: the profile's expectations, and for kinds no table knows the NOISY fields."""
    changes: list[FieldChange] = []
    for label, entry in ea.items():
        if label not in eb or ("request" not in entry and not noisy):
            continue
        obs = entry.get("observation")
        th = rules.of(obs.get("kind")) if isinstance(obs, Mapping) else None
        limits = _profile_limits(after if isinstance(after, list) else [], th[1] if th else {})
        changes += _entry_changes(label, eb[label], entry, rules, limits, noisy)
    return changes[:MAX_FIELDS], max(0, len(changes) - MAX_FIELDS)


def _state(outcome: str | None) -> str | None:
    if outcome is None:
        return None
    if outcome in ("failed", "error"):
        return "fail"
    return "skip" if outcome == "skipped" else "pass"


def _category(before: str | None, after: str | None) -> str:
    b, a = _state(before), _state(after)
    if a is None:
        return GONE
    if b is None:
        return NEW_FAILURE if a == "fail" else NEW
    if a == "fail":
        return STILL_FAILING if b == "fail" else REGRESSION
    if a == "skip":
        return NOW_SKIPPED if b != "skip" else STILL_PASSING
    return FIXED if b == "fail" else STILL_PASSING


def _layer(area: str | None) -> int:
    """Lowest layer first (node settings, link, addresses, routes, path, services): a lower
    layer's failure is read first, it often explains the ones above."""
    layer = AREA_LAYER.get(area or "", "service")
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def _area_counts(checks: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for c in checks:
        row = out.setdefault(
            str(c.get("area") or "other"), {"passed": 0, "failed": 0, "skipped": 0}
        )
        state = _state(str(c.get("outcome")))
        row["failed" if state == "fail" else "skipped" if state == "skip" else "passed"] += 1
    return out


def _causes(
    baseline: Mapping[str, Any], current: Mapping[str, Any], regressions: list[str]
) -> list[CauseGroup]:
    """Regressions grouped under the causes of the current run (diagnosis), biggest first."""
    if not regressions:
        return []

    def causes(doc: Mapping[str, Any]) -> list[Any]:
        saved = doc.get("causes")
        if isinstance(saved, list) and all(isinstance(c, Mapping) for c in saved):
            try:
                return [diagnosis.Cause.from_json(c) for c in saved]
            except (KeyError, TypeError, ValueError):
                pass
        return list(diagnosis.diagnose(doc))

    before_keys = {c.key for c in causes(baseline)}
    groups: list[CauseGroup] = []
    placed: set[str] = set()
    for c in causes(current):
        mine = [r for r in regressions if r in c.failures and r not in placed]
        if not mine:
            continue
        placed.update(mine)
        groups.append(CauseGroup(c.key, c.title, c.area, c.layer, mine, known=c.key in before_keys))
    return groups


def compare(baseline: dict[str, Any], current: dict[str, Any], baseline_path: str) -> Comparison:
    """Compare two results documents check by check (matched by check id)."""
    old = {c["id"]: c for c in baseline.get("checks", [])}
    new = {c["id"]: c for c in current.get("checks", [])}
    rules = Rules(current, baseline)
    changes: list[Change] = []
    for cid in [*new, *[i for i in old if i not in new]]:
        o, n = old.get(cid), new.get(cid)
        cat = _category(o and o.get("outcome"), n and n.get("outcome"))
        fields: list[FieldChange] = []
        more = 0
        if o and n:
            fields, more = _diff_entries(
                _entries(o.get("evidence")),
                _entries(n.get("evidence")),
                rules,
                n.get("evidence"),
                noisy=cat not in (STILL_PASSING, STILL_FAILING),
            )
        changes.append(
            Change(
                id=cid,
                area=(n or o or {}).get("area"),
                category=cat,
                before=o.get("outcome") if o else None,
                after=n.get("outcome") if n else None,
                message=str((n or o or {}).get("message", "")),
                before_message=str(o.get("message", "")) if o else "",
                evidence=fields,
                evidence_more=more,
            )
        )
    changes.sort(key=lambda c: (ORDER.index(c.category), _layer(c.area)))
    before_areas, after_areas = _area_counts(old.values()), _area_counts(new.values())
    empty = {"passed": 0, "failed": 0, "skipped": 0}
    areas = {
        a: (before_areas.get(a, empty), after_areas.get(a, empty))
        for a in sorted({*before_areas, *after_areas}, key=lambda a: (_layer(a), a))
    }
    regressions = [c.id for c in changes if c.category in UNKNOWN_FAILURES]
    return Comparison(
        baseline_path=baseline_path,
        baseline_started=baseline.get("started"),
        baseline_profile=(baseline.get("profile") or {}).get("name"),
        profile=(current.get("profile") or {}).get("name"),
        changes=changes,
        areas=areas,
        causes=_causes(baseline, current, regressions),
    )


# ---------------------------------------------------------------------------------------------
# showing


def _words(value: Any, width: int = 80) -> str:
    """A value as a person writes it: `none`, `yes`, `2001:db8::1, 2001:db8::2`, `0.13`."""
    if value is None or value in ([], {}):
        text = "none"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, list):
        text = ", ".join(_words(v, width) for v in value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k} {_words(v, width)}" for k, v in value.items())
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _counts_text(c: Mapping[str, int]) -> str:
    parts = [f"{c.get(k, 0)} {k}" for k in ("passed", "failed", "skipped") if c.get(k, 0)]
    return ", ".join(parts) or "none"


#: a category as a count reads it: `2 regressions`, `1 still failing`
_PLURAL = {REGRESSION: "regressions", NEW_FAILURE: "new failures"}


def count_words(n: int, category: str) -> str:
    word = _PLURAL.get(category, category) if n != 1 else category
    return f"{n} {word.replace('-', ' ')}"


def headline(cmp: Comparison) -> str:
    c = cmp.counts()
    parts = [count_words(c[k], k) for k in ORDER if c[k]]
    return f"against {cmp.baseline_path} ({cmp.baseline_started or 'unknown time'}): " + (
        ", ".join(parts) or "no checks"
    )


def _listed(cmp: Comparison) -> list[Change]:
    """Checks shown one by one: every change of outcome, and failures that fail differently."""
    return [
        c
        for c in cmp.changes
        if c.category not in (STILL_PASSING, STILL_FAILING)
        or (c.category == STILL_FAILING and c.evidence)
    ]


def _grouped(cmp: Comparison) -> list[tuple[CauseGroup | None, list[Change]]]:
    """The listed checks, regressions under their cause when a cause explains several."""
    listed = _listed(cmp)
    by_id = {c.id: c for c in listed}
    out: list[tuple[CauseGroup | None, list[Change]]] = []
    grouped: set[str] = set()
    for g in cmp.causes:
        if len(g.regressions) > 1:
            out.append((g, [by_id[i] for i in g.regressions if i in by_id]))
            grouped.update(g.regressions)
    rest = [c for c in listed if c.id not in grouped]
    return [*out, (None, rest)] if rest else out


def terminal_lines(cmp: Comparison, fail_on: str) -> list[str]:
    """The comparison for the terminal: per-area counts, then each change of outcome with the
    lines that explain it; calm checks are one count line."""
    out = [f"sixcheck baseline: {headline(cmp)}"]
    if cmp.baseline_profile and cmp.profile and cmp.baseline_profile != cmp.profile:
        out.append(
            f"  note: the baseline is of profile {cmp.baseline_profile!r}, this run is "
            f"{cmp.profile!r}"
        )
    moved = {a: ba for a, ba in cmp.areas.items() if ba[0] != ba[1]}
    for area, (b, a) in moved.items():
        out.append(f"  {area:<10} {_counts_text(b)} → {_counts_text(a)}")
    same = [a for a in cmp.areas if a not in moved]
    if same:
        out.append(f"  unchanged: {', '.join(same)}")
    for group, changes in _grouped(cmp):
        indent = "  "
        if group is not None:
            out.append(f"  cause ({group.area}, {group.layer}): {group.title}")
            indent = "    "
        for ch in changes:
            out.append(f"{indent}{ch.category.upper():<13} {ch.short_id}: {ch.before} → {ch.after}")
            # the check's own message is in pytest's summary; here only when no line explains
            if (
                ch.message
                and ch.category in (REGRESSION, NEW_FAILURE, NOW_SKIPPED)
                and not ch.evidence
            ):
                out.append(f"{indent}    {_words(ch.message.splitlines()[0], 110)}")
            for request, lines in ch.by_request().items():
                out.append(f"{indent}    {request}")
                out.extend(f"{indent}      {line}" for f in lines for line in f.lines())
            if ch.evidence_more:
                out.append(f"{indent}    … and {ch.evidence_more} more changes")
    for request, lines, ids in cmp.passing_changes():
        who = ", ".join(ids[:3]) + (f" +{len(ids) - 3}" if len(ids) > 3 else "")
        out.append(f"  changed, checks still pass ({who}): {request}")
        out.extend(f"      {line}" for f in lines for line in f.lines())
    passing, failing = cmp.calm()
    if failing:
        tolerated = " (tolerated: --fail-on regressions)" if fail_on == "regressions" else ""
        out.append(f"  {failing} still failing, as in the baseline{tolerated}")
    if passing:
        out.append(f"  {passing} still passing, nothing meaningful changed")
    return out


def html_section(cmp: Comparison, fail_on: str) -> str:
    """The comparison for the report's summary: per-area counts, then the changes that mean
    something, each under its check (and cause); calm checks are one line."""
    e = html.escape
    moved = {a: ba for a, ba in cmp.areas.items() if ba[0] != ba[1]}
    area_rows = "".join(
        f"<tr class='sx-moved'><td>{e(area)}</td>"
        f"<td>{e(_counts_text(b))}</td><td>{e(_counts_text(a))}</td></tr>"
        for area, (b, a) in moved.items()
    )
    same = [a for a in cmp.areas if a not in moved]
    areas = (
        "<table class='sx-areas'><tr><th>area</th><th>baseline</th><th>now</th></tr>"
        f"{area_rows}</table>"
        if moved
        else ""
    ) + (f"<p>Unchanged: {e(', '.join(same))}</p>" if same else "")

    def row(ch: Change) -> str:
        reqs = "".join(
            f"<div class='sx-req'>{e(request)}</div>" + "".join(_html_lines(f) for f in lines)
            for request, lines in ch.by_request().items()
        )
        if ch.evidence_more:
            reqs += f"<div class='sx-line'>… and {ch.evidence_more} more</div>"
        msg = ch.message.splitlines()[0] if ch.message else ""
        # the message is in the check's own entry below; here only when no line explains
        shown = f"<br><small>{e(msg)}</small>" if msg and not ch.evidence else ""
        return (
            f"<tr class='sx-{ch.category}'><td>{e(ch.category)}</td>"
            f"<td title='{e(msg)}'><b>{e(ch.short_id)}</b> <small>{e(ch.area or '')}: "
            f"{e(str(ch.before))} → {e(str(ch.after))}</small>{shown}</td>"
            f"<td>{reqs}</td></tr>"
        )

    rows = []
    for group, changes in _grouped(cmp):
        if group is not None:
            known = " (also in the baseline)" if group.known else ""
            rows.append(
                f"<tr class='sx-cause'><td colspan='3'>cause: <b>{e(group.title)}</b> "
                f"<small>{e(group.area)}, {e(group.layer)} layer{known}</small></td></tr>"
            )
        rows += [row(ch) for ch in changes]
    for request, lines, ids in cmp.passing_changes():
        who = ", ".join(ids[:3]) + (f" +{len(ids) - 3}" if len(ids) > 3 else "")
        rows.append(
            f"<tr class='sx-still-passing'><td>changed, still passing</td>"
            f"<td><small>{e(who)}</small></td><td><div class='sx-req'>{e(request)}</div>"
            + "".join(_html_lines(f) for f in lines)
            + "</td></tr>"
        )
    table = (
        "<table class='sx-baseline'><tr><th>change</th><th>check</th><th>what changed</th></tr>"
        f"{''.join(rows)}</table>"
        if rows
        else "<p>No check changed.</p>"
    )
    passing, failing = cmp.calm()
    calm = []
    if failing:
        tolerated = " (tolerated: --fail-on regressions)" if fail_on == "regressions" else ""
        calm.append(f"{failing} still failing as in the baseline{tolerated}")
    if passing:
        calm.append(f"{passing} still passing with nothing meaningful changed")
    return (
        "<style>.sx-regression td,.sx-new-failure td{background:#fdd}.sx-fixed td{background:#dfd}"
        ".sx-areas td,.sx-areas th,.sx-baseline td,.sx-baseline th{padding:1px 6px;"
        "vertical-align:top;text-align:left}.sx-moved td{font-weight:bold}"
        ".sx-baseline,.sx-areas{color:#222}.sx-cause td{background:#eee}.sx-req{font-family:monospace}.sx-line{padding-left:1.2em}"
        ".sx-baseline del{color:#a00}.sx-baseline ins{color:#070;text-decoration:none}</style>"
        f"<h2 id='sixcheck-baseline'>Compared with the baseline</h2><p>{e(headline(cmp))}</p>"
        f"{areas}{table}<p class='sx-calm'>{e('; '.join(calm))}</p>"
    )


def _html_lines(f: FieldChange) -> str:
    e = html.escape
    diff = f.set_diff()
    if diff is None:
        return (
            f"<div class='sx-line'>{e(f.field)} <del>{e(_words(f.before))}</del> → "
            f"<ins>{e(_words(f.after))}</ins></div>"
        )
    came, went = diff
    return "".join(
        f"<div class='sx-line'>{e(f.field)} <ins>+ {e(_words(x))}</ins></div>" for x in came
    ) + "".join(
        f"<div class='sx-line'>{e(f.field)} <del>- {e(_words(x))}</del></div>" for x in went
    )
